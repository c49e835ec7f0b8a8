package loadgen

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// canvas is a tiny drawing surface: rectangles, lines and 7x13 text.
type canvas struct{ img *image.RGBA }

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	dark   = color.RGBA{90, 90, 90, 255}
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
	green  = color.RGBA{44, 160, 44, 255}
	red    = color.RGBA{214, 39, 40, 255}
	purple = color.RGBA{148, 103, 189, 255}
)

var palette = []color.RGBA{orange, green, purple, red, blue}

func newCanvas(w, h int) *canvas {
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.rect(0, 0, w, h, white)
	return c
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

func (c *canvas) line(x0, y0, x1, y1 int, col color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		c.rect(x0-width/2, y0-width/2, x0-width/2+width, y0-width/2+width, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// text draws s with its baseline at y; align is 'l', 'c' or 'r' around x.
func (c *canvas) text(x, y int, s string, col color.RGBA, align byte) {
	d := &font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13}
	w := d.MeasureString(s).Round()
	switch align {
	case 'c':
		x -= w / 2
	case 'r':
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

func (c *canvas) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// shortName labels a headline metric in two lines.
func shortName(scenario, metric string) (string, string) {
	m := map[string]string{
		"logins_per_s": "logins/s", "mem_per_conn": "mem/conn", "server_cpu_per_login": "cpu/login",
		"msgs_per_s": "msgs/s", "latency_p50": "lat p50", "latency_p99": "lat p99", "latency_p999": "lat p99.9",
		"server_cpu_per_msg": "cpu/msg", "store_msgs_per_s": "store/s", "drain_msgs_per_s": "drain/s",
		"login_p99": "login p99", "login_p50": "login p50", "drain_s": "drain s",
		"deliveries_per_s": "deliv/s", "server_cpu_per_delivery": "cpu/deliv",
		"ack_p50": "ack p50", "ack_p99": "ack p99",
		"legacy_reconnect_p99": "legacy p99", "legacy_server_cpu_per_reconnect": "legacy cpu",
		"sasl2_reconnect_p99": "sasl2 p99", "sasl2_server_cpu_per_reconnect": "sasl2 cpu",
	}[metric]
	if m == "" {
		m = metric
	}
	return scenario, m
}

// Chart draws, for each headline metric, how many times better the base
// server is than each other server (log scale; above the line = better).
func (rep *Report) Chart(path string) error {
	var rows []Row
	for _, h := range headline {
		for _, r := range rep.Rows {
			if r.Scenario+"."+r.Metric == h && len(r.Ratios) > 0 {
				rows = append(rows, r)
			}
		}
	}
	var others []string
	for _, l := range rep.Labels {
		if l != rep.Base {
			others = append(others, l)
		}
	}
	// Per metric: room for one bar per other server, each wide enough for its "0.45" label.
	gw := max(90, 32*len(others)+26)
	left, right, top, bottom := 70, 20, 60, 70
	title := fmt.Sprintf("How many times better %s is (log scale; above 1 = %s better)", rep.Base, rep.Base)
	// Wide enough for the title (7-pixel glyphs) even with few metrics.
	W := max(left+right+gw*max(len(rows), 4), 7*len(title)+20)
	H := 520
	c := newCanvas(W, H)
	// Scale: log2 of the advantage, from at least 1/2 to 4.
	lo, hi := -1.0, 2.0
	for _, r := range rows {
		for _, o := range others {
			if v, ok := r.Ratios[o]; ok {
				a := math.Log2(Advantage(v, r.Better))
				if !math.IsInf(a, 0) && !math.IsNaN(a) {
					lo, hi = math.Min(lo, math.Floor(a)), math.Max(hi, math.Ceil(a))
				}
			}
		}
	}
	lo, hi = math.Max(lo, -7), math.Min(hi, 10)
	plotH := H - top - bottom
	y := func(adv float64) int {
		l := math.Log2(adv)
		l = math.Max(lo, math.Min(hi, l))
		return top + int(float64(plotH)*(hi-l)/(hi-lo))
	}
	c.text(W/2, 20, title, black, 'c')
	// Legend: one slot per other server, as wide as the longest label.
	lx, slot := W/2, 120
	for _, o := range others {
		slot = max(slot, 7*len("vs "+o)+34)
	}
	for i, o := range others {
		x := lx - slot*len(others)/2 + slot*i
		c.rect(x, 32, x+14, 44, palette[i%len(palette)])
		c.text(x+20, 43, "vs "+o, black, 'l')
	}
	// Grid.
	for e := int(lo); e <= int(hi); e++ {
		v := math.Pow(2, float64(e))
		yy := y(v)
		col := grey
		if e == 0 {
			col = dark
		}
		c.line(left, yy, W-right, yy, col, 1)
		lbl := fmt.Sprintf("%gx", v)
		if e < 0 {
			lbl = fmt.Sprintf("1/%gx", 1/v)
		}
		c.text(left-6, yy+4, lbl, dark, 'r')
	}
	// Bars.
	bw := (gw - 20) / max(len(others), 1)
	for i, r := range rows {
		x0 := left + gw*i + 10
		for j, o := range others {
			v, ok := r.Ratios[o]
			if !ok {
				continue
			}
			a := Advantage(v, r.Better)
			if math.IsInf(a, 0) || a <= 0 {
				continue
			}
			col := palette[j%len(palette)]
			c.rect(x0+bw*j, y(1), x0+bw*j+bw-2, y(a), col)
			lbl := fmt.Sprintf("%.1f", a)
			if a < 1 {
				lbl = fmt.Sprintf("%.2f", a)
			} else if a >= 20 {
				lbl = fmt.Sprintf("%.0f", a)
			}
			ty := y(a) - 3
			if a < 1 {
				ty = y(a) + 12
			}
			c.text(x0+bw*j+bw/2, ty, lbl, black, 'c')
		}
		l1, l2 := shortName(r.Scenario, r.Metric)
		c.text(left+gw*i+gw/2, H-bottom+18, l1, black, 'c')
		c.text(left+gw*i+gw/2, H-bottom+34, l2, black, 'c')
	}
	c.line(left, top, left, H-bottom, dark, 1)
	c.text(left, H-12, "rates: "+rep.Base+"/other; times, memory, CPU: other/"+rep.Base, dark, 'l')
	return c.save(path)
}

// RunChart draws one run over time: completed logins or delivered
// messages per second, and the server's RSS.
func RunChart(r *Result, path string) error {
	W, H := 900, 400
	left, right, top, bottom := 70, 70, 40, 40
	c := newCanvas(W, H)
	series := "messages"
	if len(r.Timeline[series]) == 0 {
		series = "logins"
	}
	tl := r.Timeline[series]
	step := r.TimelineStep
	if step <= 0 {
		step = TimelineBucket.Seconds()
	}
	// Per second rate from 100 ms buckets, smoothed over 1 s.
	per := int(math.Round(1 / step))
	if per < 1 {
		per = 1
	}
	var rate []float64
	for i := 0; i < len(tl); i += per {
		var s int64
		for j := i; j < i+per && j < len(tl); j++ {
			s += tl[j]
		}
		rate = append(rate, float64(s)/(float64(per)*step))
	}
	tmax := float64(len(rate))
	for _, p := range r.RSS {
		tmax = math.Max(tmax, p.T)
	}
	if tmax <= 0 {
		tmax = 1
	}
	rmax := 1.0
	for _, v := range rate {
		rmax = math.Max(rmax, v)
	}
	mmax := 1.0
	for _, p := range r.RSS {
		mmax = math.Max(mmax, p.MiB)
	}
	pw, ph := W-left-right, H-top-bottom
	x := func(t float64) int { return left + int(float64(pw)*t/tmax) }
	yr := func(v float64) int { return top + ph - int(float64(ph)*v/(rmax*1.1)) }
	ym := func(v float64) int { return top + ph - int(float64(ph)*v/(mmax*1.1)) }
	c.text(W/2, 18, fmt.Sprintf("%s - %s: %s/s (blue, left) and server RSS MiB (orange, right)", r.Label, r.Scenario, series), black, 'c')
	for i := 0; i <= 4; i++ {
		v := rmax * 1.1 * float64(i) / 4
		c.line(left, yr(v), W-right, yr(v), grey, 1)
		c.text(left-6, yr(v)+4, fmt.Sprintf("%.0f", v), blue, 'r')
		m := mmax * 1.1 * float64(i) / 4
		c.text(W-right+6, ym(m)+4, fmt.Sprintf("%.0f", m), orange, 'l')
	}
	for i := 0; i <= 5; i++ {
		t := tmax * float64(i) / 5
		lbl := fmt.Sprintf("%.0fs", t)
		if tmax < 10 {
			lbl = fmt.Sprintf("%.1fs", t)
		}
		c.text(x(t), H-bottom+16, lbl, dark, 'c')
	}
	for i := 1; i < len(rate); i++ {
		c.line(x(float64(i-1)+0.5), yr(rate[i-1]), x(float64(i)+0.5), yr(rate[i]), blue, 2)
	}
	for i := 1; i < len(r.RSS); i++ {
		a, b := r.RSS[i-1], r.RSS[i]
		c.line(x(a.T), ym(a.MiB), x(b.T), ym(b.MiB), orange, 2)
	}
	c.line(left, top, left, H-bottom, dark, 1)
	c.line(left, H-bottom, W-right, H-bottom, dark, 1)
	c.text(left, H-8, strings.TrimSpace(fmt.Sprintf("time since start; %d ok, %d failed", r.OK, r.Failed)), dark, 'l')
	return c.save(path)
}
