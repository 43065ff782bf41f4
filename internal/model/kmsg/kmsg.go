// Package kmsg parses the Linux kernel log: /dev/kmsg records and dmesg or
// serial-console text. It classifies lines (panic, Oops, BUG, WARNING,
// hung task, lockups, RCU stalls, taints, livepatch transitions and
// errors) and groups the lines of an oops or warning into a Report with
// its task, taint flags, RIP, call trace and module list.
//
// It is a pure model package, used both by the VM checks and by the fleet
// agent: standard library only, no I/O beyond the io.Reader it is given.
// Hostile input never panics, and what is kept of it is bounded.
package kmsg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits on what is kept, so that hostile input cannot use unbounded
// memory. Longer text is cut (Record.Truncated says so).
const (
	// MaxTextLen is the longest message text kept. /dev/kmsg records are
	// at most 8 KiB (CONSOLE_EXT_LOG_MAX); console lines are shorter.
	MaxTextLen = 8192
	// MaxDictEntries is the most dictionary entries kept per record.
	MaxDictEntries = 32
	// MaxLineLen is the longest input line read; the rest is skipped.
	// Escaping can make a /dev/kmsg record four times its text.
	MaxLineLen = 4 * MaxTextLen
)

// Level is a syslog log level: 0 (emergency) to 7 (debug).
type Level int

// The log levels, as printk's KERN_* numbers them.
const (
	LevelUnknown Level = -1 // a text line without a <N> prefix
	LevelEmerg   Level = 0
	LevelAlert   Level = 1
	LevelCrit    Level = 2
	LevelErr     Level = 3
	LevelWarning Level = 4
	LevelNotice  Level = 5
	LevelInfo    Level = 6
	LevelDebug   Level = 7
)

var levelNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "unknown"
}

// FacilityKernel is the facility of the kernel's own messages; user space
// writing to /dev/kmsg gets FacilityUser by default.
const (
	FacilityKernel = 0
	FacilityUser   = 1
)

// Record is one kernel log message.
type Record struct {
	Level    Level // LevelUnknown when the text carried no priority
	Facility int   // syslog facility; 0 (kernel) when unknown
	Seq      uint64
	// Time is the printk timestamp, time since boot; valid if Timestamped.
	Time time.Duration
	// Timestamped says the line carried a kernel timestamp. /dev/kmsg
	// records always do; on a console only kernel lines do, which tells
	// them from user space's output.
	Timestamped bool
	Flags       string // the /dev/kmsg flags field: "-", or "c" for a continuation
	Caller      string // the printk caller id ("T123", "C1") when logged
	Text        string // the message, \xNN escapes decoded
	// Dict holds a /dev/kmsg record's dictionary (SUBSYSTEM, DEVICE, ...).
	Dict      map[string]string
	Truncated bool // Text or Dict was cut to the limits above
}

// ParseRecord parses one /dev/kmsg record: "prio,seq,usec,flags[,...];text"
// followed by optional "\n KEY=value" dictionary lines. A trailing newline
// is allowed.
func ParseRecord(rec []byte) (Record, error) {
	var r Record
	rec = bytes.TrimSuffix(rec, []byte("\n"))
	head, rest, ok := bytes.Cut(rec, []byte(";"))
	if !ok {
		return r, errors.New("parse record: no ';' between header and message")
	}
	// The header has four fields; later kernels may add more (caller=T1),
	// which are ignored unless known.
	fields := strings.Split(string(head), ",")
	if len(fields) < 4 {
		return r, fmt.Errorf("parse record: header %q has %d fields, want at least 4", clip(string(head)), len(fields))
	}
	prio, err := strconv.ParseUint(fields[0], 10, 31)
	if err != nil {
		return r, fmt.Errorf("parse record: bad priority %q", clip(fields[0]))
	}
	r.Level, r.Facility = Level(prio&7), int(prio>>3)
	if r.Seq, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return r, fmt.Errorf("parse record: bad sequence number %q", clip(fields[1]))
	}
	usec, err := strconv.ParseUint(fields[2], 10, 63)
	if err != nil || usec > math.MaxInt64/uint64(time.Microsecond) {
		return r, fmt.Errorf("parse record: bad timestamp %q", clip(fields[2]))
	}
	r.Time, r.Timestamped = time.Duration(usec)*time.Microsecond, true
	r.Flags = clip(fields[3])
	for _, f := range fields[4:] {
		if c, ok := strings.CutPrefix(f, "caller="); ok {
			r.Caller = clip(c)
		}
	}
	text, dict, _ := bytes.Cut(rest, []byte("\n"))
	r.Text, r.Truncated = unescape(text)
	for len(dict) > 0 {
		var line []byte
		line, dict, _ = bytes.Cut(dict, []byte("\n"))
		kv, ok := bytes.CutPrefix(line, []byte(" "))
		if !ok {
			return r, fmt.Errorf("parse record: dictionary line %q does not start with a space", clip(string(line)))
		}
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || len(k) == 0 {
			return r, fmt.Errorf("parse record: dictionary line %q is not KEY=value", clip(string(line)))
		}
		if len(r.Dict) >= MaxDictEntries {
			r.Truncated = true
			continue
		}
		if r.Dict == nil {
			r.Dict = map[string]string{}
		}
		key, _ := unescape(k)
		val, cut := unescape(v)
		r.Dict[key] = val
		r.Truncated = r.Truncated || cut
	}
	return r, nil
}

// clip shortens text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// unescape decodes the \xNN escapes /dev/kmsg uses for non-printable
// bytes and the backslash, keeping at most MaxTextLen bytes.
func unescape(b []byte) (string, bool) {
	if bytes.IndexByte(b, '\\') < 0 {
		if len(b) > MaxTextLen {
			return string(b[:MaxTextLen]), true
		}
		return string(b), false
	}
	out := make([]byte, 0, min(len(b), MaxTextLen))
	for i := 0; i < len(b); i++ {
		if len(out) == MaxTextLen {
			return string(out), true
		}
		c := b[i]
		if c == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			if hi, lo := unhex(b[i+2]), unhex(b[i+3]); hi >= 0 && lo >= 0 {
				out = append(out, byte(hi<<4|lo))
				i += 3
				continue
			}
		}
		out = append(out, c)
	}
	return string(out), false
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// ParseLine parses one line of dmesg or console text:
// "[   12.345678] text", optionally with a "<N>" syslog prefix before it,
// a "[    T123]" caller id after it, or no timestamp at all (user space's
// output, or dmesg -t). A trailing "\r" or "\n" is dropped, and text
// before a carriage return inside the line.
func ParseLine(line string) Record {
	line = strings.TrimRight(line, "\r\n")
	// A bare carriage return mid-line (firmware's "Probing EDD... ok\r"
	// before the kernel's first line) means what follows overwrote it.
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	r := Record{Level: LevelUnknown}
	rest := line
	if p, after, ok := syslogPrefix(rest); ok {
		r.Level, r.Facility = Level(p&7), p>>3
		rest = after
	}
	if t, after, ok := timestamp(rest); ok {
		r.Time, r.Timestamped = t, true
		rest = after
		if c, after, ok := callerID(rest); ok {
			r.Caller, rest = c, after
		}
		// The timestamp is followed by one space; more belongs to the text
		// (call-trace lines are indented).
		rest = strings.TrimPrefix(rest, " ")
	}
	if len(rest) > MaxTextLen {
		rest, r.Truncated = rest[:MaxTextLen], true
	}
	r.Text = rest
	return r
}

// syslogPrefix reads "<N>".
func syslogPrefix(s string) (int, string, bool) {
	if len(s) < 3 || s[0] != '<' {
		return 0, s, false
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 5 {
		return 0, s, false
	}
	n, err := strconv.Atoi(s[1:end])
	if err != nil || n < 0 {
		return 0, s, false
	}
	return n, s[end+1:], true
}

// timestamp reads "[  sss.uuuuuu]".
func timestamp(s string) (time.Duration, string, bool) {
	if len(s) < 4 || s[0] != '[' {
		return 0, s, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 || end > 40 {
		return 0, s, false
	}
	num := strings.TrimLeft(s[1:end], " ")
	secStr, fracStr, ok := strings.Cut(num, ".")
	if !ok || !allDigits(secStr) || !allDigits(fracStr) {
		return 0, s, false
	}
	sec, err := strconv.ParseInt(secStr, 10, 64)
	d := time.Duration(math.MaxInt64)
	if err == nil && sec <= math.MaxInt64/int64(time.Second)-1 {
		if len(fracStr) > 9 {
			fracStr = fracStr[:9]
		}
		frac, _ := strconv.ParseInt(fracStr+strings.Repeat("0", 9-len(fracStr)), 10, 64)
		d = time.Duration(sec)*time.Second + time.Duration(frac)
	}
	return d, s[end+1:], true
}

// callerID reads "[    T123]" or "[     C0]" right after the timestamp
// (CONFIG_PRINTK_CALLER), with or without a space before it.
func callerID(s string) (string, string, bool) {
	t := strings.TrimPrefix(s, " ")
	if len(t) < 3 || t[0] != '[' {
		return "", s, false
	}
	end := strings.IndexByte(t, ']')
	if end < 0 || end > 20 {
		return "", s, false
	}
	id := strings.TrimLeft(t[1:end], " ")
	if len(id) < 2 || (id[0] != 'T' && id[0] != 'C') || !allDigits(id[1:]) {
		return "", s, false
	}
	return id, t[end+1:], true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseText parses dmesg or console text, one Record per line.
func ParseText(s string) []Record {
	var out []Record
	for len(s) > 0 {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		out = append(out, ParseLine(line))
	}
	return out
}

// Kernel returns the records that carry a kernel timestamp, dropping user
// space's lines from a console log.
func Kernel(records []Record) []Record {
	var out []Record
	for _, r := range records {
		if r.Timestamped {
			out = append(out, r)
		}
	}
	return out
}

// Scanner reads records from a stream: dmesg or console text
// (NewScanner), or /dev/kmsg records as `cat /dev/kmsg` writes them
// (NewKmsgScanner). Lines longer than MaxLineLen are cut, so a stream
// without newlines uses bounded memory.
type Scanner struct {
	r         *bufio.Reader
	kmsg      bool
	rec       Record
	err       error
	malformed int
	firstBad  error
}

// NewScanner returns a Scanner over dmesg or console text.
func NewScanner(r io.Reader) *Scanner { return &Scanner{r: bufio.NewReader(r)} }

// NewKmsgScanner returns a Scanner over /dev/kmsg records, one per line,
// each followed by its " KEY=value" dictionary lines. Malformed records
// are skipped and counted (see Malformed).
func NewKmsgScanner(r io.Reader) *Scanner { return &Scanner{r: bufio.NewReader(r), kmsg: true} }

// Scan advances to the next record. It returns false at the end of the
// stream or on a read error.
func (s *Scanner) Scan() bool {
	for {
		line, err := s.readLine()
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			return false
		}
		if !s.kmsg {
			s.rec = ParseLine(string(line))
			return true
		}
		if len(line) == 0 {
			continue
		}
		// Dictionary lines start with a space; gather them, within bounds.
		rec := line
		for len(rec) < MaxLineLen {
			next, err := s.r.Peek(1)
			if err != nil || next[0] != ' ' {
				break
			}
			dl, err := s.readLine()
			if err != nil {
				break
			}
			rec = append(append(rec, '\n'), dl...)
		}
		r, err := ParseRecord(rec)
		if err != nil {
			s.malformed++
			if s.firstBad == nil {
				s.firstBad = err
			}
			continue
		}
		s.rec = r
		return true
	}
}

// readLine returns the next line without its "\n", cut to MaxLineLen.
func (s *Scanner) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(line) < MaxLineLen {
			line = append(line, chunk[:min(len(chunk), MaxLineLen-len(line))]...)
		}
		switch err {
		case nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(chunk) > 0 || len(line) > 0 {
				return line, nil
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

// Record returns the record Scan read.
func (s *Scanner) Record() Record { return s.rec }

// Err returns the read error that stopped Scan, if any (not io.EOF).
func (s *Scanner) Err() error { return s.err }

// Malformed returns how many /dev/kmsg records were skipped and the
// first one's error.
func (s *Scanner) Malformed() (int, error) { return s.malformed, s.firstBad }

// ParseKmsg parses /dev/kmsg records as `cat /dev/kmsg` writes them. It
// returns the records it could parse, and an error naming the first
// malformed one if any were skipped.
func ParseKmsg(data string) ([]Record, error) {
	s := NewKmsgScanner(strings.NewReader(data))
	var out []Record
	for s.Scan() {
		out = append(out, s.Record())
	}
	if n, err := s.Malformed(); n > 0 {
		return out, fmt.Errorf("%d malformed records, the first: %w", n, err)
	}
	return out, nil
}
