package fileops

import (
	"archive/zip"
	"os"
	"strings"
	"testing"
)

func writeZip(t *testing.T, p string, parts map[string]string) {
	t.Helper()
	out, err := os.Create(p)
	mustDo(t, err)
	zw := zip.NewWriter(out)
	for name, content := range parts {
		w, err := zw.Create(name)
		mustDo(t, err)
		_, err = w.Write([]byte(content))
		mustDo(t, err)
	}
	mustDo(t, zw.Close())
	mustDo(t, out.Close())
}

const (
	nsW   = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	nsRel = `xmlns="http://schemas.openxmlformats.org/package/2006/relationships"`
	nsP   = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
)

func docxParts(body string) map[string]string {
	return map[string]string{
		"word/document.xml":            `<w:document ` + nsW + `><w:body>` + body + `</w:body></w:document>`,
		"word/_rels/document.xml.rels": `<Relationships ` + nsRel + `><Relationship Id="rId5" Type="hyperlink" Target="https://example.com/a" TargetMode="External"/></Relationships>`,
	}
}

func TestViewSupportedBinaries(t *testing.T) {
	f, root := newTestFiles(t)
	para := func(text string) string { return `<w:p><w:r><w:t xml:space="preserve">` + text + `</w:t></w:r></w:p>` }
	cell := func(text string) string { return `<w:tc>` + para(text) + `</w:tc>` }
	writeZip(t, root+"/doc.docx", docxParts(
		`<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Title Here</w:t></w:r></w:p>`+
			`<w:p><w:r><w:t xml:space="preserve">Plain </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>bold</w:t></w:r><w:r><w:t xml:space="preserve"> and snake_case</w:t></w:r></w:p>`+
			`<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>item</w:t></w:r></w:p>`+
			`<w:p><w:hyperlink r:id="rId5"><w:r><w:t>link</w:t></w:r></w:hyperlink></w:p>`+
			`<w:tbl><w:tr>`+cell("h1")+cell("h2")+`</w:tr><w:tr>`+cell("a")+cell("b")+`</w:tr></w:tbl>`))
	writeZip(t, root+"/long.docx", docxParts(para(strings.Repeat("word ", 4000))))
	writeZip(t, root+"/book.xlsx", map[string]string{
		"xl/workbook.xml":            `<workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<Relationships ` + nsRel + `><Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
		"xl/sharedStrings.xml":       `<sst><si><t>name</t></si><si><t>qty</t></si><si><r><t>ap</t></r><r><t>ple</t></r></si></sst>`,
		"xl/worksheets/sheet1.xml": `<worksheet><sheetData>` +
			`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="inlineStr"><is><t>note_x</t></is></c></row>` +
			`<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>3</v></c></row>` +
			`<row r="3"><c r="A3" t="str"><v>pear</v></c><c r="C3" t="b"><v>1</v></c></row>` +
			`</sheetData></worksheet>`,
	})
	sp := func(ph, text string) string {
		var paras string
		for _, p := range strings.Split(text, "\n") {
			paras += `<a:p><a:r><a:t>` + p + `</a:t></a:r></a:p>`
		}
		return `<p:sp><p:nvSpPr><p:cNvPr id="2" name="Shape"/><p:cNvSpPr/><p:nvPr>` + ph + `</p:nvPr></p:nvSpPr><p:txBody>` + paras + `</p:txBody></p:sp>`
	}
	writeZip(t, root+"/deck.pptx", map[string]string{
		"ppt/presentation.xml":            `<p:presentation ` + nsP + `><p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>`,
		"ppt/_rels/presentation.xml.rels": `<Relationships ` + nsRel + `><Relationship Id="rId2" Type="slide" Target="slides/slide1.xml"/></Relationships>`,
		"ppt/slides/slide1.xml": `<p:sld ` + nsP + `><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/></p:nvGrpSpPr>` +
			sp(`<p:ph type="title"/>`, "Hello") +
			sp(`<p:ph type="body" idx="1"/>`, "Point one\nPoint two") +
			`<p:pic><p:nvPicPr><p:cNvPr id="4" name="Picture 3" descr="A cat"/></p:nvPicPr></p:pic>` +
			`<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="5" name="Table 1"/></p:nvGraphicFramePr><a:graphic><a:graphicData><a:tbl>` +
			`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>h</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>i</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
			`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>1</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>2</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
			`</a:tbl></a:graphicData></a:graphic></p:graphicFrame>` +
			`</p:spTree></p:cSld></p:sld>`,
		"ppt/slides/_rels/slide1.xml.rels":     `<Relationships ` + nsRel + `><Relationship Id="rId3" Type="notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>`,
		"ppt/notesSlides/notesSlide1.xml":      `<p:notes ` + nsP + `><p:cSld><p:spTree>` + sp(`<p:ph type="sldImg"/>`, "") + sp(`<p:ph type="body" idx="1"/>`, "Speaker notes") + `</p:spTree></p:cSld></p:notes>`,
		"ppt/slides/_rels/unrelated.xml.rels":  "",
		"docProps/app.xml":                     "<Properties/>",
		"[Content_Types].xml":                  "<Types/>",
		"ppt/slideLayouts/slideLayout1.xml":    "<p:sldLayout/>",
		"ppt/slideMasters/slideMaster1.xml":    "<p:sldMaster/>",
		"ppt/theme/theme1.xml":                 "<a:theme/>",
		"ppt/notesMasters/notesMaster1.xml":    "<p:notesMaster/>",
		"ppt/presProps.xml":                    "<p:presentationPr/>",
		"ppt/viewProps.xml":                    "<p:viewPr/>",
		"ppt/tableStyles.xml":                  "<a:tblStyleLst/>",
		"ppt/slides/_rels/nothing_here.txt":    "",
		"ppt/media/image1.png":                 "\x89PNG",
		"ppt/notesSlides/_rels/notes.xml.rels": "",
	})
	setupTree(t, root, map[string]string{"bad.docx": "not a zip", "doc.pdf": "%PDF-1.4", "song.mp3": "ID3"})

	head := func(p string) string {
		return "Here's the content of the file " + p + " displayed in Markdown format:\n"
	}
	tests := []struct {
		file, want string
	}{
		{"doc.docx", head("{root}/doc.docx") + "# Title Here\n\nPlain **bold** and snake\\_case\n\n* item\n\n[link](https://example.com/a)\n\n| h1 | h2 |\n| --- | --- |\n| a | b |\n"},
		{"book.xlsx", head("{root}/book.xlsx") + "## Data\n| name | qty | note\\_x |\n| --- | --- | --- |\n| apple | 3.0 | NaN |\n| pear | NaN | True |\n"},
		{"deck.pptx", head("{root}/deck.pptx") + "<!-- Slide number: 1 -->\n# Hello\nPoint one\nPoint two\n\n![A cat](Picture3.jpg)\n\n| h | i |\n| --- | --- |\n| 1 | 2 |\n\n### Notes:\nSpeaker notes\n"},
		{"bad.docx", "ERROR:\nError in converting file to Markdown: not a valid Office document: zip: not a valid zip file. Please use Python code to read {root}/bad.docx"},
		{"doc.pdf", "ERROR:\nError in converting file to Markdown: converting .pdf files is not supported by the sbx runtime. Please use Python code to read {root}/doc.pdf"},
		{"song.mp3", "ERROR:\nError in converting file to Markdown: converting .mp3 files is not supported by the sbx runtime. Please use Python code to read {root}/song.mp3"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			res := doEdit(t, f, EditRequest{Command: "view", Path: root + "/" + tc.file})
			if want := expand(tc.want, root); res.Content != want {
				t.Errorf("got\n%q\nwant\n%q", res.Content, want)
			}
		})
	}
	res := doEdit(t, f, EditRequest{Command: "view", Path: root + "/long.docx"})
	if !strings.HasSuffix(res.Content, binaryClipNotice+"\n") {
		t.Errorf("long document not clipped with the binary notice: ...%q", res.Content[max(0, len(res.Content)-200):])
	}
	body := strings.TrimSuffix(strings.TrimPrefix(res.Content, head(root+"/long.docx")), binaryClipNotice+"\n")
	if runeLen(body) != maxResponseLen {
		t.Errorf("clipped to %d characters", runeLen(body))
	}
}

func TestNormalizeMarkdown(t *testing.T) {
	for in, want := range map[string]string{
		"a  \r\nb\t\n\n\n\nc":  "a\nb\n\nc",
		"\n\n\nx\n\n":          "\n\nx\n\n",
		"x\n\n\n":              "x\n\n",
		"keep\n\none gap":      "keep\n\none gap",
		"  lead stays\n\n\n\n": "  lead stays\n\n",
	} {
		if got := normalizeMarkdown(in); got != want {
			t.Errorf("normalizeMarkdown(%q) = %q, want %q", in, got, want)
		}
	}
}
