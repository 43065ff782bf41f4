package priority

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// EPSS holds FIRST's Exploit Prediction Scoring System scores for one
// day. The zero value holds none.
type EPSS struct {
	ModelVersion string // "v2025.03.14", from the file's comment line
	ScoreDate    string // "2025-11-20T12:55:00Z", as published
	scores       map[string]EPSSScore
}

// EPSSScore is one CVE's row.
type EPSSScore struct {
	Probability float64 // of exploitation activity in the next 30 days
	Percentile  float64 // among all scored CVEs, 0–1
}

// Lookup finds a CVE's score.
func (e EPSS) Lookup(id string) (EPSSScore, bool) {
	s, ok := e.scores[id]
	return s, ok
}

// Len is the number of scored CVEs.
func (e EPSS) Len() int { return len(e.scores) }

// epssHeader is the column line of every EPSS file since v2022.
const epssHeader = "cve,epss,percentile"

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// LoadEPSS parses an EPSS scores CSV (epss_scores-YYYY-MM-DD.csv), plain
// or gzip-compressed as FIRST publishes it (detected by its magic bytes):
// optional "#key:value,…" comment lines (model_version, score_date), the
// header "cve,epss,percentile", then one row per CVE. Values must be in
// [0, 1] and a CVE may appear once. Errors wrap ErrBadEPSS and name the
// line.
func LoadEPSS(r io.Reader) (EPSS, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return EPSS{}, fmt.Errorf("%w: gzip: %w", ErrBadEPSS, err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	e := EPSS{scores: map[string]EPSSScore{}}
	line := 0
	header := false
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(text, "#"):
			if header {
				return EPSS{}, fmt.Errorf("%w: line %d: comment after the header", ErrBadEPSS, line)
			}
			e.readComment(text[1:])
		case !header:
			if !strings.EqualFold(strings.TrimSpace(text), epssHeader) {
				return EPSS{}, fmt.Errorf("%w: line %d: want header %q, got %q", ErrBadEPSS, line, epssHeader, clip(text))
			}
			header = true
		case strings.TrimSpace(text) == "":
			// A blank line (a trailing one, say) carries nothing.
		default:
			id, s, err := epssRow(text)
			if err != nil {
				return EPSS{}, fmt.Errorf("%w: line %d: %w", ErrBadEPSS, line, err)
			}
			if _, dup := e.scores[id]; dup {
				return EPSS{}, fmt.Errorf("%w: line %d: %s appears twice", ErrBadEPSS, line, id)
			}
			e.scores[id] = s
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return EPSS{}, fmt.Errorf("%w: line %d: line too long", ErrBadEPSS, line+1)
		}
		return EPSS{}, fmt.Errorf("%w: line %d: read: %w", ErrBadEPSS, line+1, err)
	}
	if !header {
		return EPSS{}, fmt.Errorf("%w: no %q header", ErrBadEPSS, epssHeader)
	}
	return e, nil
}

// readComment takes model_version and score_date from a comment line
// ("model_version:v2025.03.14,score_date:2025-11-20T12:55:00Z"); other
// keys, and comments that are not key:value lists, are ignored.
func (e *EPSS) readComment(s string) {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model_version":
			e.ModelVersion = strings.TrimSpace(v)
		case "score_date":
			e.ScoreDate = strings.TrimSpace(v)
		}
	}
}

func epssRow(text string) (string, EPSSScore, error) {
	id, rest, ok1 := strings.Cut(text, ",")
	prob, pct, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 || strings.Contains(pct, ",") {
		return "", EPSSScore{}, fmt.Errorf("want 3 fields \"cve,epss,percentile\", got %q", clip(text))
	}
	if !vulns.IsCVEID(id) {
		return "", EPSSScore{}, fmt.Errorf("bad CVE ID %q", clip(id))
	}
	p, err := unitFloat(prob)
	if err != nil {
		return "", EPSSScore{}, fmt.Errorf("%s: epss: %w", id, err)
	}
	q, err := unitFloat(pct)
	if err != nil {
		return "", EPSSScore{}, fmt.Errorf("%s: percentile: %w", id, err)
	}
	return id, EPSSScore{Probability: p, Percentile: q}, nil
}

// unitFloat parses a number in [0, 1].
func unitFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, fmt.Errorf("want a number in [0, 1], got %q", clip(s))
	}
	return f, nil
}

// ReadEPSS loads an EPSS file, plain or gzip-compressed.
func ReadEPSS(path string) (EPSS, error) {
	f, err := os.Open(path)
	if err != nil {
		return EPSS{}, fmt.Errorf("open EPSS file: %w", err)
	}
	defer f.Close()
	e, err := LoadEPSS(f)
	if err != nil {
		return EPSS{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}
