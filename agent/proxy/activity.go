package proxy

import "net/http"

// tracked tells Options.Activity of each request h serves.
func (p *Proxy) tracked(h http.Handler) http.Handler {
	if p.activity == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer p.activity()()
		h.ServeHTTP(w, r)
	})
}

// busy marks a tunnel as activity for as long as it runs.
func (p *Proxy) busy() (end func()) {
	if p.activity == nil {
		return func() {}
	}
	return p.activity()
}
