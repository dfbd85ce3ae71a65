package forge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxPages bounds a paged listing. A repository with more open pull requests
// (or a pull request with more comments) than fit is an error, not a part of
// the list: a listing cut short would look like closed pull requests.
const maxPages = 30

// pager says how a forge pages a listing.
type pager struct {
	pageParam, sizeParam string
	size                 int
}

// contentTag marks an ETag arbor computed itself from a page's content, for
// forges that send none (Gitea): it is compared, never sent.
const contentTag = "arbor-sha256:"

// listPages reads every page of a listing, conditionally: etag is what the
// previous call returned (one validator per page, one per line). When every
// page is unchanged (304, or the same content for a forge without ETags) it
// returns notModified. Otherwise it returns each page's body; pages the forge
// answered 304 while another page changed are read again unconditionally.
func (c *client) listPages(ctx context.Context, path string, query url.Values, p pager, etag string) (pages [][]byte, tag string, notModified bool, err error) {
	var prev []string
	if etag != "" {
		prev = strings.Split(etag, "\n")
	}
	unchanged := len(prev) > 0
	var tags []string
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, "", false, fmt.Errorf("%s GET %s: more than %d pages of %d; refusing a partial listing", c.kind, path, maxPages, p.size)
		}
		inm := ""
		if unchanged && page <= len(prev) && !strings.HasPrefix(prev[page-1], contentTag) {
			inm = prev[page-1]
		}
		r, err := c.call(ctx, http.MethodGet, path, pageQuery(query, p, page), nil, inm)
		if err != nil {
			return nil, "", false, err
		}
		if r.status == http.StatusNotModified {
			if inm == "" {
				return nil, "", false, &Error{Forge: c.kind, Method: http.MethodGet, Path: path, StatusCode: r.status, Message: "304 to a request without If-None-Match"}
			}
			pages, tags = append(pages, nil), append(tags, inm)
			if page == len(prev) {
				break
			}
			continue
		}
		t := pageTag(r)
		if unchanged && (page > len(prev) || t != prev[page-1]) {
			unchanged = false
		}
		pages, tags = append(pages, r.body), append(tags, t)
		if !hasNext(r.header) {
			break
		}
	}
	tag = strings.Join(tags, "\n")
	if unchanged && len(pages) == len(prev) {
		return nil, tag, true, nil
	}
	for i := range pages {
		if pages[i] != nil {
			continue
		}
		r, err := c.call(ctx, http.MethodGet, path, pageQuery(query, p, i+1), nil, "")
		if err != nil {
			return nil, "", false, err
		}
		pages[i], tags[i] = r.body, pageTag(r)
	}
	return pages, strings.Join(tags, "\n"), false, nil
}

func pageQuery(base url.Values, p pager, page int) url.Values {
	q := url.Values{}
	for k, v := range base {
		q[k] = v
	}
	q.Set(p.sizeParam, strconv.Itoa(p.size))
	q.Set(p.pageParam, strconv.Itoa(page))
	return q
}

// pageTag is the page's ETag, or a hash of its content when the forge sent
// none. A validator with a line break could not be stored in one line; such
// a header is replaced by the content hash too.
func pageTag(r *response) string {
	if t := r.header.Get("ETag"); t != "" && !strings.ContainsAny(t, "\r\n") {
		return t
	}
	sum := sha256.Sum256(r.body)
	return contentTag + hex.EncodeToString(sum[:])
}

// hasNext reports whether a Link header (RFC 8288; all three forges send
// one on paged listings) has a rel="next" link.
func hasNext(h http.Header) bool {
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			for _, param := range strings.Split(link, ";")[1:] {
				name, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(name, "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(val, `"`)) {
					if strings.EqualFold(rel, "next") {
						return true
					}
				}
			}
		}
	}
	return false
}
