package fileops

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/sbx-dev/sbx/internal/pyrepr"
)

// OpenHands' editor shows .docx, .xlsx, .pptx, .pdf and audio files as
// Markdown made by a vendored copy of Microsoft's markitdown (mammoth and
// markdownify for Word, pandas for Excel, python-pptx for PowerPoint,
// pdfminer for PDF, speech recognition through Google for audio). sbx
// converts the three Office formats itself, from their XML, and follows
// the layout OpenHands produces (Excel: "## <sheet>" plus a table per
// sheet; PowerPoint: "<!-- Slide number: N -->", "# " for the title
// placeholder, tables, "![alt](name.jpg)" for pictures, "### Notes:"), but
// the text is an approximation of those libraries' output, not a copy:
// Word styles other than headings, bold, italics, lists, links and tables
// are dropped; Excel numbers are shown as stored (pandas would reformat
// floats and dates); charts, SmartArt and grouped shapes are skipped.
//
// PDF text extraction and audio transcription are not done: view returns
// the editor's conversion error for them.

// Limits for reading Office archives: a part may expand to at most
// maxOfficePart bytes, and conversion stops once the Markdown is longer than
// maxMarkdown bytes, which is far beyond what the 16 000-character clip shows.
const (
	maxOfficePart = 64 << 20
	maxMarkdown   = 1 << 20
)

// convertToMarkdown converts a supported binary file; suffix is lower case.
func convertToMarkdown(ctx context.Context, file, suffix string) (string, error) {
	var md string
	var err error
	switch suffix {
	case ".docx":
		md, err = docxToMarkdown(ctx, file)
	case ".xlsx":
		md, err = xlsxToMarkdown(ctx, file)
	case ".pptx":
		md, err = pptxToMarkdown(ctx, file)
	default:
		return "", fmt.Errorf("converting %s files is not supported by the sbx runtime", suffix)
	}
	if err != nil {
		return "", err
	}
	return normalizeMarkdown(md), nil
}

// normalizeMarkdown is markitdown's final clean-up: every line
// right-stripped, runs of three or more newlines cut to two.
func normalizeMarkdown(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = pyRStrip(l)
	}
	joined := strings.Join(lines, "\n")
	var b strings.Builder
	b.Grow(len(joined))
	run := 0 // pending newlines; a run of three or more is written as two
	for i := 0; i < len(joined); i++ {
		if joined[i] == '\n' {
			run++
			continue
		}
		b.WriteString(strings.Repeat("\n", min(run, 2)))
		run = 0
		b.WriteByte(joined[i])
	}
	b.WriteString(strings.Repeat("\n", min(run, 2)))
	return b.String()
}

// officeZip gives bounded access to the parts of an Office document.
type officeZip struct {
	zr *zip.ReadCloser
}

func openOffice(file string) (*officeZip, error) {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return nil, fmt.Errorf("not a valid Office document: %w", err)
	}
	return &officeZip{zr: zr}, nil
}

func (o *officeZip) close() { o.zr.Close() }

// part opens a part for XML decoding, or returns nil when it is absent.
func (o *officeZip) part(name string) (io.ReadCloser, error) {
	for _, f := range o.zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(rc, maxOfficePart), rc}, nil
		}
	}
	return nil, nil
}

// rels reads a relationships part: id → target, resolved against base
// (external targets are kept as they are).
func (o *officeZip) rels(name, base string) (map[string]string, error) {
	rc, err := o.part(name)
	if err != nil || rc == nil {
		return map[string]string{}, err
	}
	defer rc.Close()
	out := map[string]string{}
	dec := xml.NewDecoder(rc)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Relationship" {
			id, target, external := attr(se, "Id"), attr(se, "Target"), attr(se, "TargetMode") == "External"
			if !external {
				if strings.HasPrefix(target, "/") {
					target = strings.TrimPrefix(target, "/")
				} else {
					target = path.Join(base, target)
				}
			}
			out[id] = target
		}
	}
}

// relID returns an element's r:id, the reference into the part's
// relationships (<p:sldId> also has a plain "id").
// mainPart reads the relationships of a document's main part (dir/name)
// and opens that part, which must exist.
func (o *officeZip) mainPart(dir, name string) (map[string]string, io.ReadCloser, error) {
	rels, err := o.rels(dir+"/_rels/"+name+".rels", dir)
	if err != nil {
		return nil, nil, err
	}
	rc, err := o.part(dir + "/" + name)
	if err != nil {
		return nil, nil, err
	}
	if rc == nil {
		return nil, nil, errors.New(dir + "/" + name + " is missing")
	}
	return rels, rc, nil
}

func relID(se xml.StartElement) string {
	for _, a := range se.Attr {
		if a.Name.Local == "id" && strings.HasSuffix(a.Name.Space, "/relationships") {
			return a.Value
		}
	}
	return ""
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// mdEscape escapes what markdownify escapes by default.
func mdEscape(s string) string {
	if !strings.ContainsAny(s, "*_") {
		return s
	}
	s = strings.ReplaceAll(s, "*", `\*`)
	return strings.ReplaceAll(s, "_", `\_`)
}

// mdTable renders rows (the first being the header) as markdownify does.
func mdTable(rows [][]string) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	for i, row := range rows {
		b.WriteString("|")
		for _, c := range row {
			b.WriteString(" " + strings.ReplaceAll(strings.TrimSpace(c), "\n", " ") + " |")
		}
		b.WriteString("\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat(" --- |", len(row)) + "\n")
		}
	}
	return b.String()
}

// ---- Word ----

type docxRun struct {
	text         string
	bold, italic bool
	link         string
}

func docxToMarkdown(ctx context.Context, file string) (string, error) {
	z, err := openOffice(file)
	if err != nil {
		return "", err
	}
	defer z.close()
	links, rc, err := z.mainPart("word", "document.xml")
	if err != nil {
		return "", err
	}
	defer rc.Close()
	dec := xml.NewDecoder(rc)

	var out strings.Builder
	var (
		runs                   []docxRun
		style                  string
		list                   bool
		bold, italic, inText   bool
		link                   string
		tableDepth             int
		table                  [][]string
		row                    []string
		cell                   strings.Builder
		inRunProps, inParaProp bool
	)
	flushParagraph := func() {
		text := renderRuns(runs)
		runs = runs[:0]
		if tableDepth > 0 {
			if cell.Len() > 0 && text != "" {
				cell.WriteString(" ")
			}
			cell.WriteString(text)
			return
		}
		if strings.TrimSpace(text) == "" {
			return
		}
		switch {
		case strings.HasPrefix(style, "Heading") && len(style) == len("Heading")+1 && style[7] >= '1' && style[7] <= '6':
			text = strings.Repeat("#", int(style[7]-'0')) + " " + text
		case style == "Title":
			text = "# " + text
		case list:
			text = "* " + text
		}
		out.WriteString(text + "\n\n")
	}
	for out.Len() < maxMarkdown {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("parse word/document.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "p":
				style, list = "", false
			case "pPr":
				inParaProp = true
			case "pStyle":
				if inParaProp {
					style = attr(t, "val")
				}
			case "numPr":
				if inParaProp {
					list = true
				}
			case "r":
				bold, italic = false, false
			case "rPr":
				inRunProps = true
			case "b":
				if inRunProps {
					bold = onOff(t)
				}
			case "i":
				if inRunProps {
					italic = onOff(t)
				}
			case "t":
				inText = true
			case "tab":
				if !inParaProp {
					runs = append(runs, docxRun{text: "\t", bold: bold, italic: italic, link: link})
				}
			case "br", "cr":
				runs = append(runs, docxRun{text: "\n", link: link})
			case "hyperlink":
				link = links[relID(t)]
			case "tbl":
				tableDepth++
				if tableDepth == 1 {
					table = nil
				}
			case "tr":
				if tableDepth == 1 {
					row = nil
				}
			case "tc":
				if tableDepth == 1 {
					cell.Reset()
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "p":
				flushParagraph()
			case "pPr":
				inParaProp = false
			case "rPr":
				inRunProps = false
			case "t":
				inText = false
			case "hyperlink":
				link = ""
			case "tc":
				if tableDepth == 1 {
					row = append(row, cell.String())
				}
			case "tr":
				if tableDepth == 1 {
					table = append(table, row)
				}
			case "tbl":
				tableDepth--
				if tableDepth == 0 {
					out.WriteString(mdTable(table) + "\n")
				}
			}
		case xml.CharData:
			if inText {
				runs = append(runs, docxRun{text: string(t), bold: bold, italic: italic, link: link})
			}
		}
	}
	return strings.TrimSpace(out.String()), nil
}

// onOff reads a Word toggle property (<w:b/>, <w:b w:val="0"/>).
func onOff(se xml.StartElement) bool {
	switch attr(se, "val") {
	case "0", "false", "off", "none":
		return false
	}
	return true
}

// renderRuns merges runs of equal formatting and renders them as
// markdownify renders mammoth's <strong>, <em> and <a>.
func renderRuns(runs []docxRun) string {
	var b strings.Builder
	for i := 0; i < len(runs); {
		j := i
		var text strings.Builder
		for j < len(runs) && runs[j].bold == runs[i].bold && runs[j].italic == runs[i].italic && runs[j].link == runs[i].link {
			text.WriteString(runs[j].text)
			j++
		}
		s := mdEscape(text.String())
		if trimmed := strings.TrimSpace(s); trimmed != "" {
			lead := s[:strings.Index(s, trimmed)]
			trail := s[len(lead)+len(trimmed):]
			core := trimmed
			if runs[i].italic {
				core = "*" + core + "*"
			}
			if runs[i].bold {
				core = "**" + core + "**"
			}
			if runs[i].link != "" {
				core = "[" + core + "](" + runs[i].link + ")"
			}
			s = lead + core + trail
		}
		b.WriteString(s)
		i = j
	}
	return b.String()
}

// ---- Excel ----

func xlsxToMarkdown(ctx context.Context, file string) (string, error) {
	z, err := openOffice(file)
	if err != nil {
		return "", err
	}
	defer z.close()
	shared, err := xlsxSharedStrings(z)
	if err != nil {
		return "", err
	}
	rels, rc, err := z.mainPart("xl", "workbook.xml")
	if err != nil {
		return "", err
	}
	type sheet struct{ name, target string }
	var sheets []sheet
	dec := xml.NewDecoder(rc)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rc.Close()
			return "", fmt.Errorf("parse xl/workbook.xml: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "sheet" {
			sheets = append(sheets, sheet{attr(se, "name"), rels[relID(se)]})
		}
	}
	rc.Close()

	var out strings.Builder
	for _, s := range sheets {
		if out.Len() > maxMarkdown {
			break
		}
		grid, err := xlsxSheet(ctx, z, s.target, shared)
		if err != nil {
			return "", err
		}
		out.WriteString("## " + s.name + "\n")
		out.WriteString(strings.TrimSpace(mdTable(grid)) + "\n\n")
	}
	return strings.TrimSpace(out.String()), nil
}

func xlsxSharedStrings(z *officeZip) ([]string, error) {
	rc, err := z.part("xl/sharedStrings.xml")
	if err != nil || rc == nil {
		return nil, err
	}
	defer rc.Close()
	var out []string
	var cur strings.Builder
	inT, inPhonetic := false, false
	dec := xml.NewDecoder(rc)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse xl/sharedStrings.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "si":
				cur.Reset()
			case "t":
				inT = true
			case "rPh":
				inPhonetic = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				out = append(out, cur.String())
			case "t":
				inT = false
			case "rPh":
				inPhonetic = false
			}
		case xml.CharData:
			if inT && !inPhonetic {
				cur.Write(t)
			}
		}
	}
}

// xlsxSheet reads a worksheet into rows of cell texts, with pandas'
// read_excel conventions: the first row is the header (a blank header is
// "Unnamed: <i>", repeated ones get ".1", ".2"), blank cells are "NaN", and
// a column of whole numbers with a blank becomes floats ("1.0").
func xlsxSheet(ctx context.Context, z *officeZip, target string, shared []string) ([][]string, error) {
	rc, err := z.part(target)
	if err != nil || rc == nil {
		return nil, err
	}
	defer rc.Close()
	type cellVal struct {
		text    string
		numeric bool
	}
	cells := map[[2]int]cellVal{}
	minRow, maxRow, minCol, maxCol := -1, -1, -1, -1
	var (
		ref, typ string
		val      strings.Builder
		inV      bool
		rowNum   int
		colNext  int
	)
	dec := xml.NewDecoder(rc)
	for len(cells) < 1<<20 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", target, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "row":
				if r, err := strconv.Atoi(attr(t, "r")); err == nil {
					rowNum = r - 1
				} else {
					rowNum++
				}
				colNext = 0
			case "c":
				ref, typ = attr(t, "r"), attr(t, "t")
				val.Reset()
			case "v", "t":
				inV = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v", "t":
				inV = false
			case "c":
				col := colNext
				if c, ok := columnIndex(ref); ok {
					col = c
				}
				colNext = col + 1
				text := val.String()
				cv := cellVal{text: text}
				switch typ {
				case "s":
					if i, err := strconv.Atoi(text); err == nil && i >= 0 && i < len(shared) {
						cv.text = shared[i]
					}
				case "b":
					cv.text = map[bool]string{true: "True", false: "False"}[text == "1"]
				case "str", "inlineStr", "e":
				default:
					cv.numeric = true
				}
				if text == "" && typ != "inlineStr" && typ != "str" {
					continue
				}
				cells[[2]int{rowNum, col}] = cv
				if minRow < 0 || rowNum < minRow {
					minRow = rowNum
				}
				maxRow = max(maxRow, rowNum)
				if minCol < 0 || col < minCol {
					minCol = col
				}
				maxCol = max(maxCol, col)
			}
		case xml.CharData:
			if inV {
				val.Write(t)
			}
		}
	}
	if minRow < 0 {
		return nil, nil
	}
	ncol := maxCol - minCol + 1
	var grid [][]string
	header := make([]string, ncol)
	seen := map[string]int{}
	for c := range ncol {
		h, ok := cells[[2]int{minRow, minCol + c}]
		name := h.text
		if !ok || name == "" {
			name = fmt.Sprintf("Unnamed: %d", c)
		} else if h.numeric {
			name = excelNumber(h.text, false)
		}
		if n, dup := seen[name]; dup {
			seen[name] = n + 1
			name = fmt.Sprintf("%s.%d", name, n+1)
		} else {
			seen[name] = 0
		}
		header[c] = mdEscape(name)
	}
	grid = append(grid, header)
	// A column is floating point when any number in it is fractional or
	// any cell is blank while the rest are numbers.
	floatCol := make([]bool, ncol)
	for c := range ncol {
		allNumeric, blank, fractional := true, false, false
		for r := minRow + 1; r <= maxRow; r++ {
			v, ok := cells[[2]int{r, minCol + c}]
			switch {
			case !ok:
				blank = true
			case !v.numeric:
				allNumeric = false
			case strings.ContainsAny(v.text, ".eE"):
				fractional = true
			}
		}
		floatCol[c] = allNumeric && (blank || fractional)
	}
	for r := minRow + 1; r <= maxRow; r++ {
		row := make([]string, ncol)
		for c := range ncol {
			v, ok := cells[[2]int{r, minCol + c}]
			switch {
			case !ok:
				row[c] = "NaN"
			case v.numeric:
				row[c] = excelNumber(v.text, floatCol[c])
			default:
				row[c] = mdEscape(v.text)
			}
		}
		grid = append(grid, row)
	}
	return grid, nil
}

// excelNumber renders a stored number the way pandas would print an int
// or float column.
func excelNumber(text string, asFloat bool) string {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return text
	}
	if !asFloat && f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return pyrepr.Float(f)
}

// columnIndex turns "BC12" into the zero-based column 54.
func columnIndex(ref string) (int, bool) {
	col := 0
	i := 0
	for i < len(ref) && ref[i] >= 'A' && ref[i] <= 'Z' {
		col = col*26 + int(ref[i]-'A'+1)
		i++
	}
	if i == 0 || col > 1<<14 {
		return 0, false
	}
	return col - 1, true
}

// ---- PowerPoint ----

func pptxToMarkdown(ctx context.Context, file string) (string, error) {
	z, err := openOffice(file)
	if err != nil {
		return "", err
	}
	defer z.close()
	rels, rc, err := z.mainPart("ppt", "presentation.xml")
	if err != nil {
		return "", err
	}
	var slides []string
	dec := xml.NewDecoder(rc)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rc.Close()
			return "", fmt.Errorf("parse ppt/presentation.xml: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "sldId" {
			slides = append(slides, rels[relID(se)])
		}
	}
	rc.Close()

	md := ""
	for n, slidePath := range slides {
		if len(md) > maxMarkdown {
			break
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		md += fmt.Sprintf("\n\n<!-- Slide number: %d -->\n", n+1)
		shapes, err := pptxShapes(z, slidePath)
		if err != nil {
			return "", err
		}
		titleSeen := false
		for _, sh := range shapes {
			switch {
			case sh.picture:
				alt := sh.descr
				if alt == "" {
					alt = sh.name
				}
				md += "\n![" + alt + "](" + wordCharsOnly(sh.name) + ".jpg)\n"
			case sh.table != nil:
				md += "\n" + strings.TrimSpace(mdTable(escapeCells(sh.table))) + "\n"
			case sh.title && !titleSeen:
				titleSeen = true
				md += "# " + strings.TrimLeftFunc(sh.text, pyIsSpace) + "\n"
			case sh.hasTextFrame:
				md += sh.text + "\n"
			}
		}
		md = pyStrip(md)
		slideRels, err := z.rels(path.Join(path.Dir(slidePath), "_rels", path.Base(slidePath)+".rels"), path.Dir(slidePath))
		if err != nil {
			return "", err
		}
		for _, target := range slideRels {
			if !strings.Contains(target, "notesSlide") {
				continue
			}
			md += "\n\n### Notes:\n"
			notes, err := pptxShapes(z, target)
			if err != nil {
				return "", err
			}
			for _, sh := range notes {
				if sh.phType == "body" {
					md += sh.text
					break
				}
			}
			md = pyStrip(md)
			break
		}
	}
	return pyStrip(md), nil
}

func escapeCells(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, c := range r {
			out[i][j] = mdEscape(c)
		}
	}
	return out
}

// wordCharsOnly keeps what Python's \w matches, as re.sub(r"\W", "", s) does.
func wordCharsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.No, r) {
			return r
		}
		return -1
	}, s)
}

type pptxShape struct {
	text         string
	title        bool
	phType       string
	picture      bool
	name, descr  string
	table        [][]string
	hasTextFrame bool
}

// pptxShapes reads the top-level shapes of a slide's shape tree in order.
// python-pptx's slide title is the placeholder with index 0.
func pptxShapes(z *officeZip, part string) ([]pptxShape, error) {
	rc, err := z.part(part)
	if err != nil || rc == nil {
		return nil, err
	}
	defer rc.Close()
	dec := xml.NewDecoder(rc)
	var shapes []pptxShape
	var cur *pptxShape
	depth := 0      // nesting inside spTree
	treeDepth := -1 // depth of spTree
	var para strings.Builder
	var paras []string
	inText := false
	var row []string
	var cell strings.Builder
	inCell := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return shapes, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", part, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			name := t.Name.Local
			if name == "spTree" && treeDepth < 0 {
				treeDepth = depth
				continue
			}
			if treeDepth < 0 {
				continue
			}
			if depth == treeDepth+1 {
				switch name {
				case "sp", "pic", "graphicFrame":
					shapes = append(shapes, pptxShape{picture: name == "pic", hasTextFrame: name == "sp"})
					cur = &shapes[len(shapes)-1]
					paras = nil
				default:
					cur = nil
				}
				continue
			}
			if cur == nil {
				continue
			}
			switch name {
			case "cNvPr":
				if cur.name == "" {
					cur.name, cur.descr = attr(t, "name"), attr(t, "descr")
				}
			case "ph":
				cur.phType = attr(t, "type")
				idx := attr(t, "idx")
				cur.title = idx == "" || idx == "0"
			case "tbl":
				cur.table = [][]string{}
			case "tr":
				row = nil
			case "tc":
				inCell = true
				cell.Reset()
			case "p":
				para.Reset()
			case "t":
				inText = true
			case "br":
				para.WriteString("\v")
			}
		case xml.EndElement:
			name := t.Name.Local
			if treeDepth >= 0 && depth == treeDepth+1 && cur != nil {
				cur.text = strings.Join(paras, "\n")
				cur = nil
			}
			if depth == treeDepth {
				treeDepth = -1
			}
			depth--
			if cur == nil {
				continue
			}
			switch name {
			case "t":
				inText = false
			case "p":
				if inCell {
					if cell.Len() > 0 {
						cell.WriteString("\n")
					}
					cell.WriteString(para.String())
				} else {
					paras = append(paras, para.String())
				}
			case "tc":
				inCell = false
				row = append(row, cell.String())
			case "tr":
				cur.table = append(cur.table, row)
			}
		case xml.CharData:
			if inText && cur != nil {
				para.Write(t)
			}
		}
	}
}
