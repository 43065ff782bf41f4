package priority

import (
	"math/bits"
	"slices"
	"strings"
)

// matcher finds which of a set of lowercase ASCII phrases occur in a text,
// ignoring ASCII case, each at the start of a word: after a byte that is
// neither a letter nor '-' (so "shift-out-of-bounds" does not contain the
// phrase "out-of-bounds"). A phrase ending in '$' must end a word too.
//
// The texts are commit messages, 10.5 MB over the unscored records of the
// 2026-08 bundle: one search per phrase, or even a byte-at-a-time walk
// over words, costs more than the rest of Score together. So match finds
// word starts eight bytes at a time (SWAR) and looks a start up by its
// first three bytes in a table before comparing any phrase.
type matcher struct {
	// any has a bit per key3 that starts some phrase: 2.4 KB that stay
	// in the L1 cache, where bucket (39 KB) would not.
	any [27*27*27/64 + 1]uint64
	// bucket is 1 + the index in buckets of the phrases starting with a
	// key3, or 0 when there are none.
	bucket  [27 * 27 * 27]uint16
	buckets [][]phrase
}

type phrase struct {
	text    string
	wordEnd bool
	bits    uint32
}

// newMatcher builds a matcher for phrases (lowercase, at least three bytes,
// starting with a letter), each with the bits match reports for it.
func newMatcher(phrases map[string]uint32) *matcher {
	m := &matcher{}
	keys := make([]string, 0, len(phrases))
	for k := range phrases {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		text, wordEnd := strings.CutSuffix(k, "$")
		if len(text) < 3 || !letters[text[0]] || strings.ToLower(text) != text {
			panic("priority: bad matcher phrase " + k)
		}
		key := key3(text[0], text[1], text[2])
		m.any[key/64] |= 1 << (key % 64)
		if m.bucket[key] == 0 {
			m.buckets = append(m.buckets, nil)
			m.bucket[key] = uint16(len(m.buckets))
		}
		b := m.bucket[key] - 1
		m.buckets[b] = append(m.buckets[b], phrase{text: text, wordEnd: wordEnd, bits: phrases[k]})
	}
	return m
}

// SWAR constants: a 1 and a high bit in every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	low7  = 0x7f7f7f7f7f7f7f7f
)

// match returns the union of the bits of the phrases found in s.
func (m *matcher) match(s string) uint32 {
	var found uint32
	var carry uint64 // high bit of byte 0 set: the byte before the chunk joins a word
	// Chunks are classified one ahead: a word start is worth a look only
	// when the next two bytes are letters too (every phrase starts with
	// three), which drops "a", "in", "of", "to" … and the next chunk's
	// letters settle that for the last bytes of this one.
	letter, join := letterBytes(load8(s, 0))
	for base := 0; base < len(s); base += 8 {
		var next uint64
		if base+16 <= len(s) {
			// load8, inlined by hand: the compiler makes it one 8-byte load.
			w := s[base+8 : base+16]
			next = uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		} else {
			next = loadTail(s, base+8)
		}
		nextLetter, nextJoin := letterBytes(next)
		starts := letter &^ (join<<8 | carry) &
			(letter>>8 | nextLetter<<56) & (letter>>16 | nextLetter<<48)
		carry = join >> 56
		for ; starts != 0; starts &= starts - 1 {
			i := base + bits.TrailingZeros64(starts)>>3
			key := key3(s[i], s[i+1], s[i+2])
			if m.any[key/64]&(1<<(key%64)) == 0 {
				continue
			}
			for _, p := range m.buckets[m.bucket[key]-1] {
				if found&p.bits != p.bits && hasPrefixFold(s[i:], p.text) &&
					(!p.wordEnd || i+len(p.text) == len(s) || !letters[s[i+len(p.text)]]) {
					found |= p.bits
				}
			}
		}
		letter, join = nextLetter, nextJoin
	}
	return found
}

// load8 reads s[i:i+8] little-endian, zero past the end (a zero byte is
// not a letter).
func load8(s string, i int) uint64 {
	if i+8 <= len(s) {
		// The compiler turns this into one 8-byte load.
		w := s[i : i+8]
		return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	}
	return loadTail(s, i)
}

// loadTail is load8 for the last, short chunk (or past the end).
func loadTail(s string, i int) uint64 {
	var x uint64
	for k := 0; i+k < len(s); k++ {
		x |= uint64(s[i+k]) << (8 * k)
	}
	return x
}

// letterBytes marks, with the high bit of each byte of x, the ASCII
// letters (letter) and the letters and hyphens (join). No byte's sum
// carries into the next: every addend is at most 0x7f + 0x1f.
func letterBytes(x uint64) (letter, join uint64) {
	folded := x&low7 | 0x20*ones // 'A'–'Z' to 'a'–'z'; other bytes stay non-letters
	atLeastA := folded + (0x80-'a')*ones
	pastZ := folded + (0x80-'z'-1)*ones
	letter = atLeastA &^ pastZ &^ x & highs // &^ x: no byte ≥ 0x80 (UTF-8) is a letter
	z := x ^ '-'*ones
	hyphen := ^((z&low7 + low7) | z) & highs // high bit where z's byte is zero
	return letter, letter | hyphen
}

// key3 indexes the first three bytes of a word, ignoring ASCII case.
func key3(a, b, c byte) int {
	return (int(letterIndex[a])*27+int(letterIndex[b]))*27 + int(letterIndex[c])
}

// letterIndex maps a and A to 0, …, z and Z to 25, the rest to 26.
var letterIndex = func() (t [256]uint8) {
	for i := range t {
		t[i] = 26
	}
	for c := 0; c < 26; c++ {
		t['a'+c], t['A'+c] = uint8(c), uint8(c)
	}
	return t
}()

// letters marks the ASCII letters.
var letters = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold is strings.HasPrefix with s folded to lower case; prefix
// is lowercase already.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}
