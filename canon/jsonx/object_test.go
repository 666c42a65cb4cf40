package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestObjectRoundTrip(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"order kept", `{"b":1,"a":2,"c":3}`, `{"b":1,"a":2,"c":3}`},
		{"values keep their bytes", `{"a": [1, 2], "t":"<é>\u00e9", "n": 1.50}`, `{"a":[1, 2],"t":"<é>\u00e9","n":1.50}`},
		{"nested objects untouched", `{"m":{"z":1, "a":{"y":[]}}}`, `{"m":{"z":1, "a":{"y":[]}}}`},
		{"surrounding white space", " \t{\"a\":1}\r\n", `{"a":1}`},
		{"empty", `{}`, `{}`},
		{"duplicate keys: last value, first place", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{"keys re-encoded without HTML escaping", `{"<a>&":1,"\u0041":2,"q\"\\":3,"é":4}`, `{"<a>&":1,"A":2,"q\"\\":3,"é":4}`},
		{"control characters in keys escaped", `{"a\nb\u0001":1}`, `{"a\nb\u0001":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Object
			if err := o.Decode([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if got := string(o.Encode()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestObjectDecodeErrors(t *testing.T) {
	for _, in := range []string{``, ` `, `[1]`, `"s"`, `1`, `null`, `{"a":`, `{"a":1`, `{"a":1,}`, `{"a":1} {"b":2}`, `{"a":1}x`, `{"a":}`, `{1:2}`} {
		var o Object
		if err := o.Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = %s, want an error", in, o.Encode())
		}
	}
}

// TestObjectEdit: Set replaces in place or appends, Del keeps the order
// of the rest, Decode starts over.
func TestObjectEdit(t *testing.T) {
	var o Object
	if got := string(o.Encode()); got != `{}` {
		t.Errorf("zero object encodes as %s", got)
	}
	o.Set("x", json.RawMessage(`0`))
	if err := o.Decode([]byte(`{"a":1,"b":2,"c":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Get("x"); ok {
		t.Error("Decode kept a member of the object it replaced")
	}
	o.Set("b", json.RawMessage(`"<b>"`))
	o.Set("d", json.RawMessage(`null`))
	o.Del("a")
	o.Del("absent")
	if got, want := string(o.Encode()), `{"b":"<b>","c":3,"d":null}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if v, ok := o.Get("c"); !ok || string(v) != "3" {
		t.Errorf(`Get("c") = %s, %v`, v, ok)
	}
	if _, ok := o.Get("a"); ok {
		t.Error(`Get("a") found a deleted member`)
	}
	var keys []string
	for k := range o.All() {
		keys = append(keys, k)
	}
	if strings.Join(keys, ",") != "b,c,d" || o.Len() != 3 {
		t.Errorf("All gives %v, Len %d", keys, o.Len())
	}
	for k := range o.All() {
		if k != "b" {
			t.Errorf("All went on after its loop stopped, at %s", k)
		}
		break
	}
}

func TestIsObject(t *testing.T) {
	for in, want := range map[string]bool{`{}`: true, " \n{\"a\":1}": true, `[]`: false, `null`: false, ``: false, `"{"`: false} {
		if got := IsObject(json.RawMessage(in)); got != want {
			t.Errorf("IsObject(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzObject: whatever Decode accepts encodes to JSON that means the same,
// and decoding that again changes nothing.
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[true,null],"c":{"d":"<é>"}}`, `{"a":1,"a":2}`, `{"\u2028":"\ud800"}`, ` {"k" : "v"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Object
		if o.Decode(data) != nil {
			return
		}
		out := o.Encode()
		if !json.Valid(out) {
			t.Fatalf("Encode gave invalid JSON %q from %q", out, data)
		}
		var want, got map[string]any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("Decode accepted %q, encoding/json does not: %v", data, err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if !bytes.Equal(wb, gb) {
			t.Fatalf("%q encodes as %q, which means something else", data, out)
		}
		var again Object
		if err := again.Decode(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Encode(), out) {
			t.Fatalf("second round trip changed %q to %q", out, again.Encode())
		}
	})
}
