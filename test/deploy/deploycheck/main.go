// deploycheck: the checks of Courier's container files that need no Docker engine, done with the
// libraries Docker itself uses:
//
//	deploycheck compose FILE           compose-go (docker compose's loader): load, interpolate and
//	                                   validate against the Compose schema; prints the project as JSON
//	deploycheck dockerfile FILE        BuildKit's Dockerfile parser and linter (the rules of
//	                                   `docker build --check`); prints stages and lint warnings as JSON
//	deploycheck context DIR            the files .dockerignore lets into the build context, as JSON
//
// test/deploy/tools.ts builds it into .tools/bin; test/deploy/container.test.ts runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: deploycheck compose|dockerfile|context PATH"))
	}
	var out any
	var err error
	switch os.Args[1] {
	case "compose":
		out, err = compose(os.Args[2])
	case "dockerfile":
		out, err = dockerfile(os.Args[2])
	case "context":
		out, err = buildContext(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
	encoded, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(encoded))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "deploycheck:", err)
	os.Exit(1)
}

func compose(path string) (any, error) {
	options, err := cli.NewProjectOptions([]string{path}, cli.WithWorkingDirectory(filepath.Dir(path)), cli.WithName("courier"))
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	raw, err := project.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return json.RawMessage(raw), nil
}

type command struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type stage struct {
	Name     string    `json:"name"`
	Base     string    `json:"base"`
	Commands []command `json:"commands"`
}

type warning struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Line    int    `json:"line"`
}

func dockerfile(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ast, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	warnings := []warning{}
	for _, w := range ast.Warnings {
		warnings = append(warnings, warning{Rule: "parser", Message: w.Short, Line: w.Location.Start.Line})
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, message string, location []parser.Range) {
		line := 0
		if len(location) > 0 {
			line = location[0].Start.Line
		}
		warnings = append(warnings, warning{Rule: rule, Message: message, Line: line})
	}})
	stages, metaArgs, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		return nil, err
	}
	args := []string{}
	for _, arg := range metaArgs {
		args = append(args, arg.String())
	}
	result := []stage{}
	for _, s := range stages {
		commands := []command{}
		for _, c := range s.Commands {
			commands = append(commands, command{Name: strings.ToUpper(c.Name()), Text: fmt.Sprint(c)})
		}
		result = append(result, stage{Name: s.Name, Base: s.BaseName, Commands: commands})
	}
	return map[string]any{"args": args, "stages": result, "warnings": warnings}, nil
}

// buildContext lists the files under dir that .dockerignore lets into the build context, walking as
// the Docker CLI does (a directory that is excluded and that no exception pattern reaches into is skipped).
func buildContext(dir string) (any, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	files := []string{}
	err = filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if entry.IsDir() {
			if excluded && !exceptionReaches(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !excluded {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

func exceptionReaches(pm *patternmatcher.PatternMatcher, dir string) bool {
	for _, p := range pm.Patterns() {
		if !p.Exclusion() {
			continue
		}
		text := p.String()
		if text == dir || strings.HasPrefix(text, dir+"/") || strings.ContainsAny(text, "*?[") {
			return true
		}
	}
	return false
}
