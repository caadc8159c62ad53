// Package alerts evaluates the chart's alerting rules with Prometheus's own
// rule engine against series the e2e suite scraped from the issuer in the
// states the alerts name. It is a module of its own: Prometheus is on
// another Kubernetes line than the product, which must compile once.
package alerts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/storage"
)

// Scrape is one scrape of the issuer's metrics endpoint, as the e2e suite
// saved it.
type Scrape struct {
	At   time.Time
	Text []byte
}

// scrapedAt heads each saved scrape.
const scrapedAt = "# scraped-at-ms "

// ReadScrape reads a scrape the suite saved, headed by when it was taken.
func ReadScrape(path string) (Scrape, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scrape{}, err
	}
	first, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	ms, err := strconv.ParseInt(strings.TrimPrefix(string(first), scrapedAt), 10, 64)
	if !strings.HasPrefix(string(first), scrapedAt) || err != nil {
		return Scrape{}, fmt.Errorf("%s: the first line is not %q followed by the scrape's time in Unix milliseconds", path, scrapedAt)
	}
	return Scrape{At: time.UnixMilli(ms), Text: b}, nil
}

// Hold appends the scrape's samples to app as if scraped every interval
// for the span up to the scrape's time, as a state that has lasted that
// long looks to Prometheus. It returns how many series it held.
func (s Scrape) Hold(ctx context.Context, db storage.Appendable, span, interval time.Duration) (int, error) {
	p, err := textparse.New(s.Text, "text/plain", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return 0, err
	}
	app := db.Appender(ctx)
	n := 0
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = app.Rollback()
			return 0, fmt.Errorf("parsing the scrape: %w", err)
		}
		if entry != textparse.EntrySeries {
			continue
		}
		_, _, v := p.Series()
		var lset labels.Labels
		p.Labels(&lset)
		for at := s.At.Add(-span); !at.After(s.At); at = at.Add(interval) {
			if _, err := app.Append(0, lset, at.UnixMilli(), v); err != nil {
				_ = app.Rollback()
				return 0, fmt.Errorf("series %s: %w", lset, err)
			}
		}
		n++
	}
	return n, app.Commit()
}
