package outcomes

import (
	"image/color"
	"io"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Bucket is the width of a picture's time buckets.
const Bucket = time.Second

// palette gives each contender its colour, in the order of Contenders;
// the ideal is drawn in grey, dashed.
var palette = []color.Color{
	color.RGBA{0x99, 0x99, 0x99, 0xff}, // none
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // resilience
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, // failsafe-go
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // go-kit
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // resilience+limit
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // resilience+throttle
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, // resilience+throttle+limit
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, // resilience+budget
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, // resilience+hedge
	color.RGBA{0x17, 0xbe, 0xcf, 0xff}, // resilience+budget+ratio
}

// widths are the contenders' line widths, in the order of Contenders.
var widths = []vg.Length{vg.Points(1.5), vg.Points(4.5), vg.Points(2.5), vg.Points(1.5)}

// secondTicks marks every 10 seconds, labelled in whole seconds.
type secondTicks struct{}

func (secondTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for x := math.Ceil(min/10) * 10; x <= max; x += 10 {
		ts = append(ts, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
	}
	return ts
}

// Picture writes one scenario's picture as SVG: goodput (top) and p99 latency
// (bottom) per second of call starts, one line per contender and a dashed
// one for the ideal, the fault window shaded.
func Picture(w io.Writer, runs []*Run, ideal *Run) error {
	return picture(w, runs, ideal, vgsvg.New(8*vg.Inch, 6*vg.Inch))
}

// canvas is what picture draws on: SVG, or PNG for a look at it.
type canvas interface {
	vg.CanvasSizer
	io.WriterTo
}

func picture(w io.Writer, runs []*Run, ideal *Run, canvas canvas) error {
	s := runs[0].Scenario
	good := plot.New()
	good.Title.Text = s.Name + ": goodput per second of call starts"
	good.Y.Label.Text = "goodput"
	good.Y.Min, good.Y.Max = 0, 1.05
	lat := plot.New()
	lat.Title.Text = s.Name + ": p99 latency seen by the caller"
	lat.Y.Label.Text = "p99 (ms)"
	lat.X.Label.Text = "seconds into the run"
	lat.Y.Min = 0
	lat.Y.Max = float64(time.Duration(s.Deadline)/time.Millisecond) * 1.05
	for _, p := range []*plot.Plot{good, lat} {
		p.X.Min, p.X.Max = 0, time.Duration(s.Duration).Seconds()
		p.Legend.Top = false
		p.Legend.Left = false
		p.X.Tick.Marker = secondTicks{}
		p.Add(plotter.NewGrid())
		if f := s.Fault; f.Kind != FaultNone {
			x0, x1 := time.Duration(f.Start).Seconds(), time.Duration(f.End).Seconds()
			band, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: p.Y.Min}, {X: x1, Y: p.Y.Min}, {X: x1, Y: p.Y.Max}, {X: x0, Y: p.Y.Max}})
			if err != nil {
				return err
			}
			band.Color = color.RGBA{0xf2, 0xe6, 0xd0, 0xff}
			band.LineStyle.Width = 0
			p.Add(band)
		}
	}
	for i, r := range append(append([]*Run(nil), runs...), ideal) {
		var g, l plotter.XYs
		for _, pt := range r.Timeline(Bucket) {
			x := (pt.At + Bucket/2).Seconds()
			g = append(g, plotter.XY{X: x, Y: pt.Goodput})
			l = append(l, plotter.XY{X: x, Y: float64(pt.P99) / float64(time.Millisecond)})
		}
		name, c, dashes := r.Contender, palette[i%len(palette)], []vg.Length(nil)
		if r.ideal {
			name, c, dashes = "ideal", color.Black, []vg.Length{vg.Points(4), vg.Points(3)}
		}
		for _, pl := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{good, g}, {lat, l}} {
			line, err := plotter.NewLine(pl.xys)
			if err != nil {
				return err
			}
			// Earlier lines wider, so that a line under another with the
			// same numbers still shows.
			width := vg.Points(1.5)
			if !r.ideal && i < len(widths) {
				width = widths[i]
			}
			line.Color, line.Width, line.Dashes = c, width, dashes
			pl.p.Add(line)
			if pl.p == good {
				pl.p.Legend.Add(name, line)
			}
		}
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 3 * vg.Millimeter, PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: 3 * vg.Millimeter}
	cs := plot.Align([][]*plot.Plot{{good}, {lat}}, tiles, draw.New(canvas))
	good.Draw(cs[0][0])
	lat.Draw(cs[1][0])
	_, err := canvas.WriteTo(w)
	return err
}
