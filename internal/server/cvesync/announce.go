package cvesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// AnnounceSummary says what ingesting a mailbox did.
type AnnounceSummary struct {
	Messages  int       `json:"messages"`
	Added     int       `json:"added"`
	Updated   int       `json:"updated"`
	Known     int       `json:"already_in_repo"`
	Malformed int       `json:"malformed"`
	Problems  []Problem `json:"problems,omitempty"`
}

// Announce ingests linux-cve-announce messages (an mbox stream). A CVE the
// repository does not have yet is stored as announced, so it shows up before
// the repository catches up; the repository's record replaces it when a
// sync brings it in. Messages about CVEs the repository already has change
// nothing: mails are not re-sent when a record changes, so the repository
// is the truth.
func Announce(ctx context.Context, st store.Store, r io.Reader, now time.Time) (AnnounceSummary, error) {
	var sum AnnounceSummary
	recs, errs := vulns.ParseMbox(r)
	sum.Messages = len(recs) + len(errs)
	for _, err := range errs {
		p := Problem{File: "mbox", Reason: err.Error()}
		// ParseMbox wraps the record's error with the message number.
		var re *vulns.RecordError
		if errors.As(err, &re) {
			p.ID = re.ID
		}
		sum.Problems = append(sum.Problems, p)
	}
	sum.Malformed = len(errs)
	for i := range recs {
		if recs[i].FirstSeen.IsZero() {
			recs[i].FirstSeen = now.UTC().Truncate(time.Second)
		}
		recs[i].Source = vulns.SourceAnnounce
	}
	c, err := st.ApplyAnnouncements(ctx, recs)
	if err != nil {
		return sum, fmt.Errorf("store announcements: %w", err)
	}
	sum.Added, sum.Updated, sum.Known = c.Added, c.Updated, c.Known
	return sum, nil
}
