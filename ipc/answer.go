package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// ErrAmbiguousAnswer: an agent's answer has a duplicate key, or a key
// spelled like one the client reads in other letter case.
//
// encoding/json matches keys without regard to case and keeps the last of
// duplicates; Python's json keeps the last exact match and ignores other
// spellings. {"access_token": "a", "Access_Token": "b"} would be "b" to the
// Go client and "a" to the Python one. No agent writes such an answer, so
// both clients refuse it rather than each picking a different token. The
// rule, shared with the Python client through
// testdata/duplicate_keys.json: refuse an answer when any object in it, at
// any depth, has two keys equal under simple Unicode case folding (exact
// duplicates included), or a key that folds to one the client reads
// without being it. (So answers keep names users choose, profiles and
// routes, out of keys: "Dev" and "dev" would be refused as one key twice.)
var ErrAmbiguousAnswer = errors.New("the agent's answer has a duplicate key (or two spellings of one key); refusing it")

// answerKeys are the JSON keys decoding into v's type reads (at any depth),
// and those of the error body, folded key -> key.
func answerKeys(v any) map[string]string {
	t := reflect.TypeOf(v)
	if k, ok := answerKeyCache.Load(t); ok {
		return k.(map[string]string)
	}
	keys := map[string]string{}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			keys[foldKey(name)] = name
			walk(f.Type)
		}
	}
	if t != nil {
		walk(t)
	}
	walk(reflect.TypeOf(Error{}))
	answerKeyCache.Store(t, keys)
	return keys
}

var answerKeyCache sync.Map // reflect.Type -> map[string]string

// foldKey maps s to one spelling per simple case-folding class: two keys
// fold alike exactly when strings.EqualFold (and so encoding/json) takes
// them for one.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		b.WriteRune(low)
	}
	return b.String()
}

// checkKeys returns ErrAmbiguousAnswer when data has, in any object, two
// keys that fold alike or a key that folds to one of known (answerKeys)
// without being it; a syntax error when data is not JSON.
func checkKeys(data []byte, known map[string]string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkValue(dec, known); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func checkValue(dec *json.Decoder, known map[string]string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			f := foldKey(key)
			if want, ok := known[f]; seen[f] || (ok && key != want) {
				return ErrAmbiguousAnswer
			}
			seen[f] = true
			if err := checkValue(dec, known); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, known); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}
