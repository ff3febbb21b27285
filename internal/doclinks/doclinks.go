// Package doclinks checks the relative links of the repository's Markdown
// files: every link to a file must name one that exists, and every #anchor
// into a Markdown file must name one of its headings. Its test runs the
// check over every tracked *.md file, so `make test` fails on a broken link
// (a moved source file, a renamed heading) before a reader finds it.
package doclinks

import (
	"bufio"
	"bytes"
	"fmt"
	"iter"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Broken is one link that leads nowhere.
type Broken struct {
	File   string // the Markdown file, relative to the root
	Line   int
	Target string
	Reason string
}

func (b Broken) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", b.File, b.Line, b.Target, b.Reason)
}

// link is one [text](target) or ![alt](target) found in a file.
type link struct {
	line   int
	target string
}

var (
	// inlineLink matches [text](target) and ![alt](target); the target ends
	// at whitespace (an optional "title" follows) or the closing parenthesis.
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// referenceLink matches a reference definition: [name]: target.
	referenceLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	codeSpan      = regexp.MustCompile("`+[^`]*`+")
	scheme        = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// Check verifies the links of files (paths relative to root, slash
// separated) and returns the broken ones.
func Check(root string, files []string) ([]Broken, error) {
	anchors := map[string]map[string]bool{} // Markdown file → its anchors
	anchorsOf := func(file string) (map[string]bool, error) {
		if a, ok := anchors[file]; ok {
			return a, nil
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			return nil, err
		}
		a := Anchors(data)
		anchors[file] = a
		return a, nil
	}
	var broken []Broken
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			return nil, err
		}
		for _, l := range links(data) {
			bad := func(reason string) {
				broken = append(broken, Broken{File: file, Line: l.line, Target: l.target, Reason: reason})
			}
			if scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue // external: not checked here
			}
			target, fragment, _ := strings.Cut(l.target, "#")
			target, err := url.PathUnescape(target)
			if err != nil {
				bad("bad escape")
				continue
			}
			dest := file
			if target != "" {
				if strings.HasPrefix(target, "/") {
					bad("absolute path: use a relative one")
					continue
				}
				dest = path.Clean(path.Join(path.Dir(file), target))
				if dest == ".." || strings.HasPrefix(dest, "../") {
					bad("outside the repository")
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
					bad("no such file or folder")
					continue
				}
			}
			if fragment == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			a, err := anchorsOf(dest)
			if err != nil {
				return nil, err
			}
			if !a[fragment] {
				bad("no heading with this anchor in " + dest)
			}
		}
	}
	return broken, nil
}

// links returns the link targets of a Markdown document, outside fenced
// code blocks and code spans.
func links(data []byte) []link {
	var out []link
	for n, line := range proseLines(data) {
		if m := referenceLink.FindStringSubmatch(line); m != nil {
			out = append(out, link{n, m[1]})
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{n, m[1]})
		}
	}
	return out
}

// proseLines yields the lines of a Markdown document outside fenced code
// blocks, with their numbers from 1.
func proseLines(data []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		fence := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if f := fenceOf(line); f != "" {
				switch {
				case fence == "":
					fence = f
				case strings.HasPrefix(f, fence):
					fence = ""
				}
				continue
			}
			if fence != "" {
				continue
			}
			if !yield(n, line) {
				return
			}
		}
	}
}

// fenceOf returns the fence (``` or ~~~, as long as written) that opens or
// closes a code block on this line, or "".
func fenceOf(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, c := range []string{"`", "~"} {
		n := len(t) - len(strings.TrimLeft(t, c))
		if n >= 3 {
			return t[:n]
		}
	}
	return ""
}

// Anchors returns the anchors GitHub makes for a document's headings (ATX
// headings, outside code blocks): lowercased, punctuation dropped, spaces
// turned into hyphens, and -1, -2, … appended to repeats.
func Anchors(data []byte) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(data) {
		t := strings.TrimLeft(line, " ")
		if len(line)-len(t) > 3 || !strings.HasPrefix(t, "#") {
			continue
		}
		level := len(t) - len(strings.TrimLeft(t, "#"))
		rest := t[level:]
		if level > 6 || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		slug := Slug(strings.TrimRight(strings.TrimSpace(rest), "#"))
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// Slug is GitHub's anchor for a heading's text: lower case, letters,
// digits, '-' and '_' kept, spaces made '-', everything else dropped.
// Markdown inside the heading counts as its text: a link keeps its words.
func Slug(heading string) string {
	heading = markdownLink.ReplaceAllString(strings.TrimSpace(heading), "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var markdownLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
