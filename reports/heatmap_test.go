package reports_test

import (
	"bytes"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/netpolcheck/netpolcheck/reports"
)

func TestHeatMapPNG(t *testing.T) {
	// two endpoints, two ports; port 0: one wrong cell (row 1, column 0),
	// port 1: one absent column and one cell never probed.
	s := &reports.Snapshot{Endpoints: []string{"x/a", "x/b"}, Ports: []string{"80/TCP", "81/UDP"},
		Expected: []string{".X" + "..", ".-" + ".-"},
		Observed: []string{".X" + "X.", ".-" + "?-"}}
	data, err := s.PNG()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// 4 px per cell, 6 px between ports: 2*8 + 6 wide, 8 high
	if b := img.Bounds(); b.Dx() != 22 || b.Dy() != 8 {
		t.Fatalf("heat map is %dx%d", b.Dx(), b.Dy())
	}
	for _, tc := range []struct {
		x, y int
		want color.NRGBA
	}{
		{1, 1, color.NRGBA{0x3c, 0xa0, 0x4a, 0xff}},  // port 0, x/a -> x/a: allowed
		{5, 1, color.NRGBA{0x80, 0x80, 0x80, 0xff}},  // port 0, x/a -> x/b: denied
		{1, 5, color.NRGBA{0xd7, 0x1f, 0x1f, 0xff}},  // port 0, x/b -> x/a: wrong
		{19, 1, color.NRGBA{0xff, 0xff, 0xff, 0xff}}, // port 1, x/a -> x/b: absent
		{15, 5, color.NRGBA{0xf2, 0xc1, 0x1b, 0xff}}, // port 1, x/b -> x/a: not probed
	} {
		if got := color.NRGBAModel.Convert(img.At(tc.x, tc.y)); got != tc.want {
			t.Errorf("pixel (%d,%d) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}

func TestHTMLShowsAHeatMapForEveryCaseAndRun(t *testing.T) {
	page, err := threeRuns(t).HTML()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	withTables := 0
	for _, row := range threeRuns(t).Cases {
		for _, res := range row.Results {
			if res.Case != nil && len(res.Case.Steps) > 0 && res.Case.Steps[len(res.Case.Steps)-1].Table != nil {
				withTables++
			}
		}
	}
	images := findAll(findAll(doc, "table", "cases")[0], "img", "heatmap")
	if len(images) != withTables || withTables == 0 {
		t.Errorf("%d heat maps in the case table, want %d", len(images), withTables)
	}
	for _, img := range images {
		if !strings.HasPrefix(attr(img, "src"), "data:image/png;base64,") {
			t.Errorf("heat map source %.40q is not an inline PNG", attr(img, "src"))
		}
	}
}
