package dialect

import (
	"fmt"

	"luthien.dev/canon/jsonx"
)

// Overlay returns base with every key of patch written over it. Objects
// present in both are merged recursively; any other value in patch
// replaces base's. Keys only in base are kept in their order, so a
// response a policy changed keeps the provider's unknown fields.
func Overlay(base, patch []byte) ([]byte, error) {
	var b, p jsonx.Object
	if err := b.Decode(base); err != nil {
		return nil, fmt.Errorf("overlay: base: %w", err)
	}
	if err := p.Decode(patch); err != nil {
		return nil, fmt.Errorf("overlay: patch: %w", err)
	}
	for k, pv := range p.All() {
		if bv, ok := b.Get(k); ok && jsonx.IsObject(bv) && jsonx.IsObject(pv) {
			merged, err := Overlay(bv, pv)
			if err != nil {
				return nil, err
			}
			pv = merged
		}
		b.Set(k, pv)
	}
	return b.Encode(), nil
}

// Without returns obj without key, other keys in their order.
func Without(obj []byte, key string) ([]byte, error) {
	var o jsonx.Object
	if err := o.Decode(obj); err != nil {
		return nil, fmt.Errorf("without: %w", err)
	}
	if _, ok := o.Get(key); !ok {
		return obj, nil
	}
	o.Del(key)
	return o.Encode(), nil
}

// AppendString appends s as a JSON string, escaping only what JSON
// requires (quotes, backslashes, control characters), as the providers do.
func AppendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
