// Package keyquote renders names (keys, paths, field names) and text that may
// echo them (a backend's error message) for error messages and logs: on one
// line and at a bounded length, whatever the input holds.
//
// Keys are names, not values, but they come from configuration and from
// callers, and may be of any length and hold any bytes: a key of a mebibyte
// must not make an error message of a megabyte, and a key holding a newline
// must not split a log line (or forge one). The secrets package and every
// source of this module quote keys with Quote; sources written elsewhere can
// do the same with strconv.Quote and a length limit of their own.
package keyquote

import (
	"strconv"
	"unicode/utf8"
)

// Max is the largest number of bytes that Quote and Line write for the body
// of their output, not counting the surrounding quotes of Quote and the
// marker of a cut.
const Max = 256

// Cut marks output that was cut short.
const Cut = "..."

// Quote returns s as a double-quoted Go string literal, as strconv.Quote does
// (control characters, invalid UTF-8 and non-printable runes escaped), with
// at most Max bytes between the quotes. When s does not fit, it is cut at a
// character boundary and Cut is written inside the closing quote, so that
// the result stays a valid literal: Quote(strings.Repeat("a", 1000)) is
// "aaa…a..." with 256 a's.
func Quote(s string) string {
	if len(s) <= Max {
		if q := strconv.Quote(s); len(q) <= Max+2 {
			return q
		}
	}
	b := make([]byte, 0, min(len(s), Max)+len(Cut)+2)
	b = append(b, '"')
	b = appendEscaped(b, s, Max, true)
	return string(append(b, '"'))
}

// Line returns s on one line with at most max bytes, plus Cut when s was cut.
// Printable characters, quotes and backslashes are kept as they are; control
// characters (newlines, tabs, escape sequences), invalid UTF-8 and other
// non-printable runes are escaped as strconv.Quote escapes them. Use it for
// free text that may echo a key, such as the message of a backend's error.
// A max below 1 is taken as Max.
func Line(s string, max int) string {
	if max < 1 {
		max = Max
	}
	return string(appendEscaped(make([]byte, 0, min(len(s), max)+len(Cut)), s, max, false))
}

// appendEscaped appends s to b, each character escaped as strconv.Quote
// escapes it (quotes and backslashes only when quoting), stopping before the
// first character whose escaped form would take the output past max bytes;
// in that case it appends Cut.
func appendEscaped(b []byte, s string, max int, quoting bool) []byte {
	var buf [16]byte // the longest escape, "\U0010ffff", quoted
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc []byte
		if !quoting && r != utf8.RuneError && strconv.IsPrint(r) {
			esc = append(buf[:0], s[i:i+size]...)
		} else {
			// strconv.Quote escapes each character on its own, so
			// quoting one character at a time gives the same result.
			esc = strconv.AppendQuote(buf[:0], s[i:i+size])
			esc = esc[1 : len(esc)-1]
		}
		if n+len(esc) > max {
			return append(b, Cut...)
		}
		b = append(b, esc...)
		n += len(esc)
		i += size
	}
	return b
}
