package check

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// imageFiles is what a Dockerfile's final stage copies into its image.
type imageFiles struct {
	// context is the build context's directory.
	context string
	copies  []copyLine
}

// copyLine is one COPY of the final stage.
type copyLine struct {
	// src is relative to the build context; empty when copied from
	// another stage.
	src, dst string
}

// readDockerfile reads the COPY instructions of a Dockerfile's last stage
// (one source each, as ours have).
func readDockerfile(file, context string) (imageFiles, error) {
	f, err := os.Open(file)
	if err != nil {
		return imageFiles{}, fmt.Errorf("read Dockerfile: %w", err)
	}
	defer f.Close()
	files := imageFiles{context: context}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			files.copies = nil
		case "COPY":
			var args []string
			fromStage := false
			for _, a := range fields[1:] {
				if strings.HasPrefix(a, "--") {
					fromStage = fromStage || strings.HasPrefix(a, "--from=")
					continue
				}
				args = append(args, a)
			}
			if len(args) != 2 {
				return imageFiles{}, fmt.Errorf("%s: %q: want COPY with one source", file, sc.Text())
			}
			c := copyLine{dst: path.Clean(args[1])}
			if !fromStage {
				c.src = args[0]
			}
			files.copies = append(files.copies, c)
		}
	}
	if err := sc.Err(); err != nil {
		return imageFiles{}, fmt.Errorf("read %s: %w", file, err)
	}
	return files, nil
}

// has reports whether the image has a file at p: a COPY's destination, or
// a regular file under a directory copied from the build context.
func (f imageFiles) has(p string) bool {
	p = path.Clean(p)
	for _, c := range f.copies {
		if p == c.dst {
			return true
		}
		rest, ok := strings.CutPrefix(p, c.dst+"/")
		if !ok || c.src == "" {
			continue
		}
		if info, err := os.Stat(filepath.Join(f.context, c.src, filepath.FromSlash(rest))); err == nil && info.Mode().IsRegular() {
			return true
		}
	}
	return false
}
