package store

import (
	"testing"

	"github.com/kc-agent/kc-agent/agent/dpop"
)

// The key item is read back from the keychain or a file anyone with the
// user's account could have edited: decodeKey returns a P-256 key or an
// error, never a panic, and what encodeKey wrote reads back as the same key.
// (A TPM key's record is read without asking the TPM.)
func FuzzDecodeKey(f *testing.F) {
	k, _ := dpop.NewKey()
	good, _ := encodeKey(k)
	f.Add(good)
	f.Add([]byte(`{"v":1,"kind":"software-p256","key":""}`))
	f.Add([]byte(`{"v":1,"kind":"tpm","key":"x"}`))
	f.Add([]byte(`{"v":1,"kind":"tpm-p256","public":"AAE","private":"AAEA"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := decodeKey(data, "")
		if err != nil {
			return
		}
		if _, err := dpop.Thumbprint(key); err != nil {
			t.Fatalf("decodeKey accepted a key that can't sign proofs: %v", err)
		}
		again, err := encodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeKey(again, ""); err != nil {
			t.Fatalf("a decoded key does not read back: %v", err)
		}
	})
}
