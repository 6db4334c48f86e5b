package proxy

import "sync"

// bufferPool lends ReverseProxy its copy buffers, so a request does not
// allocate 32 KiB each time it streams a body.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
