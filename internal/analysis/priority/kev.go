package priority

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Sentinel errors for input files that are not what they claim to be.
var (
	// ErrBadKEV: the input is not a well-formed CISA KEV catalog.
	ErrBadKEV = errors.New("malformed KEV catalog")
	// ErrBadEPSS: the input is not a well-formed EPSS scores CSV.
	ErrBadEPSS = errors.New("malformed EPSS file")
)

// KEV is CISA's Known Exploited Vulnerabilities catalog
// (known_exploited_vulnerabilities.json). The zero value is an empty
// catalog.
type KEV struct {
	Title          string
	CatalogVersion string // "2025.11.20"
	DateReleased   string // as published, "2025-11-20T17:02:55.8035Z"
	Entries        []KEVEntry
	byID           map[string]int
}

// KEVEntry is one vulnerabilities[] element.
type KEVEntry struct {
	CVE              string // cveID
	VendorProject    string // "Linux"
	Product          string // "Kernel"
	Name             string // vulnerabilityName
	DateAdded        time.Time
	ShortDescription string
	RequiredAction   string
	DueDate          time.Time // zero when the entry has none
	RansomwareUse    string    // knownRansomwareCampaignUse: "Known" or "Unknown"
	Notes            string
	CWEs             []string
}

// Ransomware reports whether CISA knows the CVE to be used in ransomware
// campaigns.
func (e KEVEntry) Ransomware() bool { return e.RansomwareUse == "Known" }

// Lookup finds a CVE in the catalog.
func (k KEV) Lookup(id string) (KEVEntry, bool) {
	i, ok := k.byID[id]
	if !ok {
		return KEVEntry{}, false
	}
	return k.Entries[i], true
}

// Len is the number of entries.
func (k KEV) Len() int { return len(k.Entries) }

// kevFile is the catalog's JSON. Pointers tell a missing field from an
// empty one.
type kevFile struct {
	Title           string             `json:"title"`
	CatalogVersion  string             `json:"catalogVersion"`
	DateReleased    string             `json:"dateReleased"`
	Count           *int               `json:"count"`
	Vulnerabilities *[]json.RawMessage `json:"vulnerabilities"`
}

type kevJSONEntry struct {
	CVEID                      *string  `json:"cveID"`
	VendorProject              string   `json:"vendorProject"`
	Product                    string   `json:"product"`
	VulnerabilityName          string   `json:"vulnerabilityName"`
	DateAdded                  *string  `json:"dateAdded"`
	ShortDescription           string   `json:"shortDescription"`
	RequiredAction             string   `json:"requiredAction"`
	DueDate                    string   `json:"dueDate"`
	KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
	Notes                      string   `json:"notes"`
	CWEs                       []string `json:"cwes"`
}

// LoadKEV parses the KEV catalog JSON. Every entry must have a valid CVE
// ID (CVE-YYYY-NNNN…) and dateAdded (YYYY-MM-DD), an ID may appear only
// once, and count, when present, must match the entries: a truncated or
// hand-edited catalog is refused rather than half-used. Errors wrap
// ErrBadKEV and name the entry by its index in vulnerabilities[].
func LoadKEV(r io.Reader) (KEV, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return KEV{}, fmt.Errorf("read KEV catalog: %w", err)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return KEV{}, fmt.Errorf("%w: want a JSON object with a vulnerabilities array", ErrBadKEV)
	}
	var f kevFile
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&f); err != nil {
		return KEV{}, fmt.Errorf("%w: %w", ErrBadKEV, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return KEV{}, fmt.Errorf("%w: data after the catalog object", ErrBadKEV)
	}
	if f.Vulnerabilities == nil {
		return KEV{}, fmt.Errorf("%w: no vulnerabilities array", ErrBadKEV)
	}
	raw := *f.Vulnerabilities
	if f.Count != nil && *f.Count != len(raw) {
		return KEV{}, fmt.Errorf("%w: count is %d but vulnerabilities has %d entries", ErrBadKEV, *f.Count, len(raw))
	}
	k := KEV{
		Title:          f.Title,
		CatalogVersion: f.CatalogVersion,
		DateReleased:   f.DateReleased,
		Entries:        make([]KEVEntry, 0, len(raw)),
		byID:           make(map[string]int, len(raw)),
	}
	for i, msg := range raw {
		e, err := kevEntry(msg)
		if err != nil {
			return KEV{}, fmt.Errorf("%w: vulnerabilities[%d]: %w", ErrBadKEV, i, err)
		}
		if j, dup := k.byID[e.CVE]; dup {
			return KEV{}, fmt.Errorf("%w: vulnerabilities[%d]: %s repeats vulnerabilities[%d]", ErrBadKEV, i, e.CVE, j)
		}
		k.byID[e.CVE] = len(k.Entries)
		k.Entries = append(k.Entries, e)
	}
	return k, nil
}

func kevEntry(msg json.RawMessage) (KEVEntry, error) {
	var j kevJSONEntry
	if err := json.Unmarshal(msg, &j); err != nil {
		return KEVEntry{}, err
	}
	if j.CVEID == nil {
		return KEVEntry{}, errors.New("no cveID")
	}
	if !vulns.IsCVEID(*j.CVEID) {
		return KEVEntry{}, fmt.Errorf("bad cveID %q", clip(*j.CVEID))
	}
	if j.DateAdded == nil {
		return KEVEntry{}, fmt.Errorf("%s: no dateAdded", *j.CVEID)
	}
	added, err := time.Parse(time.DateOnly, *j.DateAdded)
	if err != nil {
		return KEVEntry{}, fmt.Errorf("%s: bad dateAdded %q", *j.CVEID, clip(*j.DateAdded))
	}
	var due time.Time
	if j.DueDate != "" {
		if due, err = time.Parse(time.DateOnly, j.DueDate); err != nil {
			return KEVEntry{}, fmt.Errorf("%s: bad dueDate %q", *j.CVEID, clip(j.DueDate))
		}
	}
	return KEVEntry{
		CVE:              *j.CVEID,
		VendorProject:    j.VendorProject,
		Product:          j.Product,
		Name:             j.VulnerabilityName,
		DateAdded:        added,
		ShortDescription: j.ShortDescription,
		RequiredAction:   j.RequiredAction,
		DueDate:          due,
		RansomwareUse:    j.KnownRansomwareCampaignUse,
		Notes:            j.Notes,
		CWEs:             j.CWEs,
	}, nil
}

// ReadKEV loads the KEV catalog from a file.
func ReadKEV(path string) (KEV, error) {
	f, err := os.Open(path)
	if err != nil {
		return KEV{}, fmt.Errorf("open KEV catalog: %w", err)
	}
	defer f.Close()
	k, err := LoadKEV(f)
	if err != nil {
		return KEV{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// clip shortens bad input quoted in an error.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
