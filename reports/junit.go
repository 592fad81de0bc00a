package reports

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JUnitCaseProperty names the test-case property a suite may attach (with
// Ginkgo: AddReportEntry(JUnitCaseProperty, theCase)) to carry the Case as
// JSON; Ginkgo v2 writes report entries as <properties> of the test case.
// ReadJUnit takes the case's steps (truth tables and mismatches) and labels
// from it.
const JUnitCaseProperty = "netpolcheck.case"

// junitSuites is the <testsuites> root element.
type junitSuites struct {
	Time   string       `xml:"time,attr"`
	Suites []junitSuite `xml:"testsuite"`
}

// junitSuite is a <testsuite>; some tools nest them.
type junitSuite struct {
	Name      string       `xml:"name,attr"`
	Time      string       `xml:"time,attr"`
	Timestamp string       `xml:"timestamp,attr"`
	Suites    []junitSuite `xml:"testsuite"`
	Cases     []junitCase  `xml:"testcase"`
}

// junitCase is a <testcase>. Ginkgo v2 also writes a status attribute.
type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Status     string          `xml:"status,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Failures   []junitProblem  `xml:"failure"`
	Errors     []junitProblem  `xml:"error"`
	Skipped    *junitProblem   `xml:"skipped"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// junitProblem is a <failure>, <error> or <skipped> element.
type junitProblem struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// ReadJUnit reads a JUnit XML file into a Run named name (the file's base
// name without extension when name is empty). See ParseJUnit.
func ReadJUnit(path, name string) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading JUnit report: %w", err)
	}
	defer f.Close()
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	run, err := ParseJUnit(f, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return run, nil
}

// ParseJUnit reads JUnit XML as written by Ginkgo v2 (ginkgo --junit-report)
// or any other tool: a <testsuites> root or a single <testsuite>, suites
// possibly nested, test cases whose <failure> or <error> child marks them
// failed and whose <skipped> child marks them skipped (Ginkgo's status
// attribute is read too: pending is skipped; timedout, aborted, panicked
// and interrupted are failed).
//
// Ginkgo names a test case "[It] <container texts> <spec text> [Label1,
// Label2]": the leaf-node prefix is dropped, trailing bracket groups become
// labels, and a token "<suite>/<case>" whose suite is one of netpolcheck's
// (recipes, conformance, generated) is the case ID, the text after it the
// case name. Other cases keep their whole remaining name as ID, with the
// classname as suite. Ginkgo's suite setup nodes ([BeforeSuite], ...) are
// kept only when they failed. A case that passed but whose attached steps
// probed none of its subject cells is Incomplete.
func ParseJUnit(r io.Reader, name string) (*Run, error) {
	dec := xml.NewDecoder(r)
	root, err := rootElement(dec)
	if err != nil {
		return nil, err
	}
	var doc junitSuites
	switch root.Name.Local {
	case "testsuites":
		err = dec.DecodeElement(&doc, &root)
	case "testsuite":
		doc.Suites = make([]junitSuite, 1)
		err = dec.DecodeElement(&doc.Suites[0], &root)
	default:
		return nil, fmt.Errorf("not a JUnit report: root element <%s>, want <testsuites> or <testsuite>", root.Name.Local)
	}
	if err != nil {
		return nil, fmt.Errorf("not a JUnit report: %w", err)
	}
	b := junitBuilder{run: &Run{SchemaVersion: SchemaVersion, Name: name}, seen: map[string]int{}}
	for _, s := range doc.Suites {
		if err := b.addSuite(s, ""); err != nil {
			return nil, err
		}
	}
	if total, err := seconds(doc.Time); err == nil && total > 0 {
		b.run.DurationSeconds = total
	} else if b.run.DurationSeconds == 0 {
		for _, c := range b.run.Cases {
			b.run.DurationSeconds += c.DurationSeconds
		}
	}
	return b.run, nil
}

func rootElement(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return xml.StartElement{}, fmt.Errorf("not a JUnit report: no root element")
		}
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("not a JUnit report: %w", err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start, nil
		}
	}
}

// junitBuilder accumulates the cases of a report into a run.
type junitBuilder struct {
	run *Run
	// seen counts the cases per suite and ID, to keep IDs unique.
	seen map[string]int
}

func (b *junitBuilder) addSuite(s junitSuite, parent string) error {
	suiteName := s.Name
	if suiteName == "" {
		suiteName = parent
	}
	if b.run.StartedAt.IsZero() && s.Timestamp != "" {
		for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339Nano} {
			if t, err := time.Parse(layout, s.Timestamp); err == nil {
				b.run.StartedAt = t
				break
			}
		}
	}
	if parent == "" {
		if t, err := seconds(s.Time); err == nil {
			b.run.DurationSeconds += t
		}
	}
	for _, jc := range s.Cases {
		c, keep, err := caseOf(jc, suiteName)
		if err != nil {
			return err
		}
		if !keep {
			continue
		}
		key := c.Suite + "\x00" + c.ID
		b.seen[key]++
		if n := b.seen[key]; n > 1 {
			c.ID = fmt.Sprintf("%s (%d)", c.ID, n)
		}
		b.run.Cases = append(b.run.Cases, c)
	}
	for _, child := range s.Suites {
		if err := b.addSuite(child, suiteName); err != nil {
			return err
		}
	}
	return nil
}

// caseOf converts a test case; keep is false for suite setup nodes that did
// not fail.
func caseOf(jc junitCase, suiteName string) (c Case, keep bool, err error) {
	text, setupNode := stripLeafNodeType(strings.TrimSpace(jc.Name))
	text, labels := splitLabels(text)
	c = Case{Labels: labels, State: junitState(jc), Failure: junitFailure(jc)}
	if c.DurationSeconds, err = seconds(jc.Time); err != nil {
		return Case{}, false, fmt.Errorf("test case %q: time: %w", jc.Name, err)
	}
	if setupNode && c.State != Failed {
		return Case{}, false, nil
	}
	c.Suite = jc.Classname
	if c.Suite == "" {
		c.Suite = suiteName
	}
	c.ID, c.Name = text, text
	if setupNode {
		c.ID, c.Name = strings.TrimSpace(jc.Name), strings.TrimSpace(jc.Name)
	} else if id, rest, ok := findCaseID(text); ok {
		c.ID, c.Suite = id, id[:strings.IndexByte(id, '/')]
		if rest != "" {
			c.Name = rest
		}
	}
	for _, p := range jc.Properties {
		if p.Name != JUnitCaseProperty {
			continue
		}
		var attached Case
		if err := json.Unmarshal([]byte(p.Value), &attached); err != nil {
			return Case{}, false, fmt.Errorf("test case %q: property %s: %w", jc.Name, JUnitCaseProperty, err)
		}
		c.Steps = attached.Steps
		for _, l := range attached.Labels {
			if !slices.Contains(c.Labels, l) {
				c.Labels = append(c.Labels, l)
			}
		}
	}
	if c.State == Passed && c.SubjectNotProbed() {
		c.State = Incomplete
	}
	return c, true, nil
}

// stripLeafNodeType removes Ginkgo's "[It] " prefix and reports whether the
// test case is a suite-level node instead of a spec.
func stripLeafNodeType(name string) (text string, setupNode bool) {
	rest, ok := strings.CutPrefix(name, "[")
	if !ok {
		return name, false
	}
	nodeType, after, ok := strings.Cut(rest, "]")
	if !ok {
		return name, false
	}
	switch nodeType {
	case "It":
		return strings.TrimSpace(after), false
	case "BeforeSuite", "AfterSuite", "SynchronizedBeforeSuite", "SynchronizedAfterSuite",
		"ReportBeforeSuite", "ReportAfterSuite", "DeferCleanup (Suite)":
		return strings.TrimSpace(after), true
	}
	return name, false
}

// splitLabels removes the trailing " [A, B]" groups Ginkgo appends (labels,
// then any version constraints) and returns their items as labels.
func splitLabels(text string) (string, []string) {
	var groups [][]string
	for strings.HasSuffix(text, "]") {
		open := strings.LastIndex(text, " [")
		if open < 0 {
			break
		}
		inner := text[open+2 : len(text)-1]
		if strings.ContainsAny(inner, "[]") {
			break
		}
		groups = append(groups, strings.Split(inner, ", "))
		text = strings.TrimSpace(text[:open])
	}
	var labels []string
	for i := len(groups) - 1; i >= 0; i-- {
		for _, l := range groups[i] {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
	}
	return text, labels
}

// findCaseID finds the first token "<suite>/<case>" naming one of
// netpolcheck's suites, and returns it with the text after it.
func findCaseID(text string) (id, rest string, ok bool) {
	fields := strings.Fields(text)
	for i, f := range fields {
		token := strings.TrimRight(f, ":,;")
		suite, name, found := strings.Cut(token, "/")
		if !found || name == "" || !isSuite(suite) {
			continue
		}
		rest = strings.Join(fields[i+1:], " ")
		return token, strings.TrimSpace(strings.TrimLeft(rest, ":-–— ")), true
	}
	return "", "", false
}

// isSuite reports whether name is one of netpolcheck's Ginkgo suites.
func isSuite(name string) bool {
	switch name {
	case "recipes", "conformance", "generated":
		return true
	}
	return false
}

func junitState(jc junitCase) string {
	switch {
	case len(jc.Failures) > 0 || len(jc.Errors) > 0:
		return Failed
	case jc.Skipped != nil:
		return Skipped
	}
	switch strings.ToLower(jc.Status) {
	case "failed", "timedout", "aborted", "panicked", "interrupted", "error":
		return Failed
	case "skipped", "pending", "disabled":
		return Skipped
	}
	return Passed
}

// junitFailure joins the messages of a case's failures and errors, taking
// an element's text when it has no message attribute.
func junitFailure(jc junitCase) string {
	var parts []string
	for _, p := range append(slices.Clip(jc.Failures), jc.Errors...) {
		msg := strings.TrimSpace(p.Message)
		if msg == "" {
			msg = strings.TrimSpace(p.Body)
		}
		if msg != "" {
			parts = append(parts, msg)
		}
	}
	return strings.Join(parts, "\n\n")
}

// seconds parses a JUnit time attribute; empty is zero.
func seconds(s string) (float64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	return v, nil
}
