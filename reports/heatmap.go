package reports

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
)

// Heat-map geometry: pixels per cell, and between two ports' grids.
const (
	pngCell = 4
	pngGap  = 6
)

// heatColors colours the kinds of cell, as the legend describes them.
func heatColor(k CellKind) color.NRGBA {
	switch k {
	case CellAllowed:
		return color.NRGBA{0x3c, 0xa0, 0x4a, 0xff} // green
	case CellDenied:
		return color.NRGBA{0x80, 0x80, 0x80, 0xff} // grey
	case CellWrong:
		return color.NRGBA{0xd7, 0x1f, 0x1f, 0xff} // red
	case CellNotProbed:
		return color.NRGBA{0xf2, 0xc1, 0x1b, 0xff} // yellow
	default:
		return color.NRGBA{0xff, 0xff, 0xff, 0xff} // absent: white
	}
}

// PNG draws the snapshot as a heat map: one square grid per port/protocol,
// side by side, rows are sources and columns destinations. It is a few
// hundred bytes, so a page can show one for every case and run.
func (s *Snapshot) PNG() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n := len(s.Endpoints)
	side := n * pngCell
	width := len(s.Ports)*(side+pngGap) - pngGap
	if width <= 0 || side == 0 {
		return nil, fmt.Errorf("an empty snapshot has no heat map")
	}
	img := image.NewNRGBA(image.Rect(0, 0, width, side))
	for p := range s.Ports {
		x0 := p * (side + pngGap)
		for from := range n {
			for to := range n {
				c := heatColor(s.Kind(p, from, to))
				for dy := range pngCell {
					for dx := range pngCell {
						img.SetNRGBA(x0+to*pngCell+dx, from*pngCell+dy, c)
					}
				}
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("encoding the heat map: %w", err)
	}
	return b.Bytes(), nil
}

// heatMapURL returns the last step's heat map of a case as a data URL, or ""
// when the case recorded no table.
func heatMapURL(c *Case) template.URL {
	if c == nil {
		return ""
	}
	for i := len(c.Steps) - 1; i >= 0; i-- {
		if c.Steps[i].Table == nil {
			continue
		}
		data, err := c.Steps[i].Table.PNG()
		if err != nil {
			return ""
		}
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(data))
	}
	return ""
}
