package prompt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The prompt folder: every *.yaml / *.yml file directly in it holds one
// prompt,
//
//	id: support-answer
//	versions:
//	  - version: 1
//	    model: gpt-4o-mini            # optional
//	    system: "…"                   # optional, Anthropic style
//	    messages:
//	      - role: system
//	        content: "You are {{company}}'s assistant"
//	      - role: user
//	        content: "{{question}}"
//
// with versions numbered 1, 2, 3, … in order. Quote strings that start
// with '{': unquoted, YAML reads "{{x}}" as a mapping. Hidden entries are
// skipped, which covers the ..data folder and timestamped folders of a
// Kubernetes ConfigMap mount, while its top-level symlinks are followed.

// FileError is a problem in one prompt file. Line is 1-based; 0 when
// the problem is not at a line (an unreadable file).
type FileError struct {
	File    string // path of the file
	Line    int
	Problem string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Problem)
	}
	return e.File + ": " + e.Problem
}

// fileSet is one successful load of the folder.
type fileSet struct {
	byID map[string]*promptFile
}

type promptFile struct {
	name     string // base name
	versions []Version
}

func (s *fileSet) lookup(id string) *promptFile {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// dirFile is a prompt file's name and content as read.
type dirFile struct {
	name string
	data []byte
}

// readPromptDir reads the prompt files of dir, sorted by name, and a hash
// of names and contents: polling compares hashes, which is immune to the
// symlink swaps of a ConfigMap update and to mtime granularity.
func readPromptDir(dir string) ([]dirFile, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, sum, fmt.Errorf("prompt folder: %w", err)
	}
	h := sha256.New()
	var files []dirFile
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path) // follows the ConfigMap's symlinks
		if errors.Is(err, fs.ErrNotExist) {
			continue // a symlink left dangling mid-update; the next poll sees the new state
		}
		if err != nil {
			return nil, sum, &FileError{File: path, Problem: err.Error()}
		}
		if !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, sum, &FileError{File: path, Problem: err.Error()}
		}
		files = append(files, dirFile{name: name, data: data})
		for _, part := range [][]byte{[]byte(name), data} {
			_ = binary.Write(h, binary.LittleEndian, uint64(len(part)))
			h.Write(part)
		}
	}
	h.Sum(sum[:0])
	return files, sum, nil
}

// parsePromptFiles parses every file; all problems are reported together.
func parsePromptFiles(dir string, files []dirFile) (*fileSet, error) {
	set := &fileSet{byID: make(map[string]*promptFile, len(files))}
	var errs []error
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		pf, id, err := parsePromptFile(path, f.name, f.data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := set.byID[id]; ok {
			errs = append(errs, &FileError{File: path, Line: pf.idLine,
				Problem: fmt.Sprintf("prompt id %q is also defined in %s", id, filepath.Join(dir, prev.name))})
			continue
		}
		set.byID[id] = &promptFile{name: f.name, versions: pf.versions}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

type parsedPromptFile struct {
	versions []Version
	idLine   int
}

func parsePromptFile(path, name string, data []byte) (*parsedPromptFile, string, error) {
	fail := func(n *yaml.Node, format string, args ...any) (*parsedPromptFile, string, error) {
		line := 0
		if n != nil {
			line = n.Line
		}
		return nil, "", &FileError{File: path, Line: line, Problem: fmt.Sprintf(format, args...)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(nil, "is empty; want a prompt (id and versions)")
		}
		return nil, "", yamlSyntaxError(path, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return fail(&next, "holds a second YAML document; put one prompt in each file")
	}
	root := yamlDeref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = yamlDeref(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		return fail(root, "want a mapping with id and versions")
	}
	if k := yamlDuplicateKey(root); k != nil {
		return fail(k, "key %q appears twice", k.Value)
	}
	var idNode, versionsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], yamlDeref(root.Content[i+1])
		switch k.Value {
		case "id":
			idNode = v
		case "versions":
			versionsNode = v
		default:
			return fail(k, "unknown key %q (want id and versions)", k.Value)
		}
	}
	if idNode == nil {
		return fail(root, "id is missing")
	}
	if idNode.Kind != yaml.ScalarNode || idNode.ShortTag() == "!!null" {
		return fail(idNode, "id must be a string")
	}
	id := idNode.Value
	if err := ValidateID(id); err != nil {
		return fail(idNode, "%v", err)
	}
	if versionsNode == nil {
		return fail(root, "versions is missing")
	}
	if versionsNode.Kind != yaml.SequenceNode || len(versionsNode.Content) == 0 {
		return fail(versionsNode, "versions must be a non-empty list")
	}
	out := &parsedPromptFile{idLine: idNode.Line}
	for i, vn := range versionsNode.Content {
		v, err := parsePromptFileVersion(yamlDeref(vn), i, path)
		if err != nil {
			return nil, "", err
		}
		v.ID, v.File = id, name
		out.versions = append(out.versions, v)
	}
	return out, id, nil
}

func parsePromptFileVersion(n *yaml.Node, i int, path string) (Version, error) {
	where := "versions[" + strconv.Itoa(i) + "]"
	fail := func(at *yaml.Node, format string, args ...any) (Version, error) {
		return Version{}, &FileError{File: path, Line: at.Line, Problem: where + fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode {
		return fail(n, " must be a mapping with version and messages")
	}
	if k := yamlDuplicateKey(n); k != nil {
		return fail(k, ": key %q appears twice", k.Value)
	}
	var v Version
	var versionNode, messagesNode, systemNode *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, val := n.Content[j], yamlDeref(n.Content[j+1])
		switch k.Value {
		case "version":
			versionNode = val
		case "model":
			if val.ShortTag() == "!!null" {
				continue
			}
			if val.Kind != yaml.ScalarNode || val.ShortTag() != "!!str" {
				return fail(val, ".model must be a string")
			}
			v.Model = strings.TrimSpace(val.Value)
		case "messages":
			messagesNode = val
		case "system":
			systemNode = val
		default:
			return fail(k, ": unknown key %q (want version, model, messages, system)", k.Value)
		}
	}
	if versionNode == nil {
		return fail(n, ".version is missing")
	}
	num, err := strconv.Atoi(versionNode.Value)
	if versionNode.Kind != yaml.ScalarNode || versionNode.ShortTag() != "!!int" || err != nil {
		return fail(versionNode, ".version must be an integer")
	}
	if num != i+1 {
		return fail(versionNode, ".version is %d; versions must be numbered 1, 2, 3, … in order, so this one is %d", num, i+1)
	}
	v.Version = num
	if messagesNode == nil {
		return fail(n, ".messages is missing")
	}
	if messagesNode.Kind != yaml.SequenceNode || len(messagesNode.Content) == 0 {
		return fail(messagesNode, ".messages must be a non-empty list of messages")
	}
	for j, m := range messagesNode.Content {
		if yamlDeref(m).Kind != yaml.MappingNode {
			return fail(m, ".messages[%d] must be a mapping such as {role: user, content: \"…\"}", j)
		}
	}
	if v.Messages, err = yamlToJSON(messagesNode); err != nil {
		return Version{}, promptFileErrorAt(err, path, where+".messages")
	}
	if systemNode != nil && systemNode.ShortTag() != "!!null" {
		if !(systemNode.Kind == yaml.ScalarNode && systemNode.ShortTag() == "!!str") && systemNode.Kind != yaml.SequenceNode {
			return fail(systemNode, ".system must be a string or a list of content blocks")
		}
		if v.System, err = yamlToJSON(systemNode); err != nil {
			return Version{}, promptFileErrorAt(err, path, where+".system")
		}
	}
	norm, err := NormalizeTemplate(v.Template)
	if err != nil {
		return fail(n, ": %v", err)
	}
	v.Template = norm
	return v, nil
}

// promptFileErrorAt turns a yamlToJSON error into a FileError.
func promptFileErrorAt(err error, path, where string) error {
	var ye *yamlError
	if errors.As(err, &ye) {
		return &FileError{File: path, Line: ye.line, Problem: where + ": " + ye.problem}
	}
	return &FileError{File: path, Problem: where + ": " + err.Error()}
}

// promptFileIDs lists the ids of a set, sorted (for logs).
func promptFileIDs(s *fileSet) []string {
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
