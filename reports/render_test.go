package reports_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/reports"
)

// threeRuns adds to the fixture a "partial" run whose recipe case failed
// because the sources of namespace y were never probed.
func threeRuns(t *testing.T) *reports.Comparison {
	t.Helper()
	reference, none := fixtureRuns(t)
	partial := &reports.Run{Name: "partial", CNI: "calico", Cases: []reports.Case{{
		ID: "recipes/seed001/1.2", Suite: "recipes", Name: "policies are additive", Labels: []string{"Recipe"},
		State: reports.Failed, Failure: "cells never probed", Steps: []reports.Step{probeStep(t, true, "y/a")},
	}}}
	return reports.Compare([]*reports.Run{reference, none, partial})
}

// TestMarkdownWithin cuts the report at several limits: it never exceeds
// one, always keeps the run summary, keeps whole rows and details blocks
// only, and says how many it left out.
func TestMarkdownWithin(t *testing.T) {
	cmp := threeRuns(t)
	full := cmp.Markdown()
	if got := cmp.MarkdownWithin(len(full) + 400); got != full {
		t.Errorf("a limit above the report's size changed it")
	}
	head := full[:strings.Index(full, "\n## Cases")]
	for _, limit := range []int{len(head) + 450, len(head) + 700, len(full) - 300} {
		md := cmp.MarkdownWithin(limit)
		if len(md) > limit {
			t.Errorf("limit %d: %d bytes", limit, len(md))
		}
		if !strings.HasPrefix(md, head) {
			t.Errorf("limit %d: the run summary and label table are not all there", limit)
		}
		if !strings.Contains(md, fmt.Sprintf("left out to keep this report under %d bytes: the HTML report shows them all._", limit)) {
			t.Errorf("limit %d: no line says what was left out:\n%s", limit, md)
		}
		if strings.Count(md, "<details>") != strings.Count(md, "</details>") {
			t.Errorf("limit %d: a details block is cut in the middle", limit)
		}
	}
	if md := cmp.MarkdownWithin(len(head) + 450); !strings.Contains(md, "_5 case rows left out") && !strings.Contains(md, "_3 failing or divergent cases left out") {
		t.Errorf("a tight limit names neither the case rows nor the failing cases it left out:\n%s", md[len(head):])
	}
}

func TestMarkdown(t *testing.T) {
	md := threeRuns(t).Markdown()
	for _, want := range []string{
		"| run | CNI | provider | passed | failed | divergent | incomplete | skipped | missing | cells not probed | time | time to enforce p50 / p90 / p99 |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
		"| reference | reference | local | 5 | 0 | 0 | 0 | 0 | 0 | 0 | 1m1s | - |\n",
		"| none | none | local | 0 | 2 | 1 | 0 | 1 | 1 | 0 | 6s | - |\n",
		"| partial | calico |  | 0 | 1 | 0 | 0 | 0 | 4 | 0 | 0s | - |\n",
		"| label | reference | none | partial |\n|---|:-:|:-:|:-:|\n",
		"| ImplementationDefined | 1/1 | 0/1 (⚠️ 1) | 0/0 |\n",
		"| Recipe | 2/2 | 0/2 | 0/1 |\n",
		"## Cases (5)",
		"| `conformance/ipblock-pod-ip` case conformance/ipblock-pod-ip | Conformance, IPBlock, ImplementationDefined | ✅ | ⚠️ | — |\n",
		"| `conformance/sctp` case conformance/sctp | Conformance, SCTP | ✅ | ⏭️ | — |\n",
		"| `recipes/seed001/1.2` case recipes/seed001/1.2 | Recipe, Ingress | ✅ | ❌ | ❌ |\n",
		"## Failures and divergences (3 cases)",
		"<details><summary>recipes/seed001/1.2 case recipes/seed001/1.2</summary>\n\nLabels: Recipe, Ingress\n\n**none**: ❌ failed\n\nStep `apply`: 10 of 28 cells wrong after 1 round\n\n```text\n80/TCP: 4 wrong cells\n",
		"**none**: ⚠️ divergent",
		"diff 81/UDP x/a x/b y/a ext\nx/a         .   X   .   -\n",
		"y/a -> x/a 80/TCP: expected denied, observed connected (1 attempts)\n    y/a -> x/a 80/TCP: denied\n",
		"**partial**: ❌ failed\n\nStep `apply`: 0 of 21 cells wrong after 1 round\n\n```text\n80/TCP: 4 wrong cells\n",
		"diff 80/TCP x/a x/b y/a ext\nx/a         .   .   .   .\nx/b         .   .   .   .\ny/a         ?   ?   ?   ?\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Count(md, "<details>") != 3 || strings.Count(md, "</details>") != 3 {
		t.Errorf("want 3 details blocks:\n%s", md)
	}
	if t.Failed() {
		t.Logf("Markdown:\n%s", md)
	}
}

func TestMarkdownFailureMessageAndEscaping(t *testing.T) {
	run := &reports.Run{Name: "a|b", Cases: []reports.Case{{
		ID: "generated/0007", Suite: "generated", Name: "pipes | and <tags>", State: reports.Failed,
		Failure: "expected ```x``` to be\ny",
	}}}
	md := reports.Compare([]*reports.Run{run}).Markdown()
	for _, want := range []string{
		"| a\\|b |",
		"| `generated/0007` pipes \\| and &lt;tags&gt; |  | ❌ |",
		"<summary>generated/0007 pipes | and &lt;tags&gt;</summary>",
		"````text\nexpected ```x``` to be\ny\n````\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// checkWellFormed fails unless every element is closed, in order.
func checkWellFormed(t *testing.T, page string) {
	t.Helper()
	void := map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "input": true, "link": true, "col": true, "wbr": true}
	var open []string
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("tokenizer: %v", z.Err())
			}
			if len(open) > 0 {
				t.Fatalf("unclosed elements %q", open)
			}
			return
		case html.StartTagToken:
			if name, _ := z.TagName(); !void[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes %q", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// findAll returns every element below n with the tag (and class, if given).
func findAll(n *html.Node, tag, class string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag && (class == "" || hasClass(d, class)) {
			out = append(out, d)
		}
	}
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
