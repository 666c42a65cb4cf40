// Package htmltest queries parsed HTML pages in tests: elements by a
// predicate, their attributes, classes and text.
package htmltest

import (
	"strings"

	"golang.org/x/net/html"
)

// All returns the elements under root (root included) that match, in
// document order.
func All(root *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if root != nil {
		walk(root)
	}
	return out
}

// First returns the first element that matches, or nil.
func First(root *html.Node, match func(*html.Node) bool) *html.Node {
	if all := All(root, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

// Attr returns an attribute's value ("" when n is nil or lacks it).
func Attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// HasClass reports whether n has the class.
func HasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(Attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// AncestorClass returns n's nearest ancestor with the class, or nil.
func AncestorClass(n *html.Node, class string) *html.Node {
	for p := n.Parent; p != nil; p = p.Parent {
		if HasClass(p, class) {
			return p
		}
	}
	return nil
}

// Text is the text of n and everything under it.
func Text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// Texts is the text of every element with the tag under root.
func Texts(root *html.Node, tag string) []string {
	var out []string
	for _, n := range All(root, func(n *html.Node) bool { return n.Data == tag }) {
		out = append(out, Text(n))
	}
	return out
}
