package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/messages"
	"kforge.dev/kforge/reporter"
)

// globalOptions are flags every command shares.
type globalOptions struct {
	plain   bool
	verbose bool
	// output is -o/--output of the commands that take it (addOutputFlag).
	output outputFormat
	// lang is --lang: the language of status, explain and doctor.
	lang string
}

// printer is the messages of --lang, or of the environment's locale.
func (g *globalOptions) printer() (*messages.Printer, error) {
	return messages.New(g.lang)
}

func (g *globalOptions) reporter(cmd *cobra.Command) *reporter.Reporter {
	var log io.Writer
	if g.verbose {
		log = cmd.ErrOrStderr()
	}
	if g.output == "json" {
		command := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		return reporter.NewJSON(cmd.OutOrStdout(), log, command)
	}
	return reporter.New(cmd.OutOrStdout(), log, g.plain || os.Getenv("CI") != "")
}

// finish ends r's report of a command that returned err (in JSON mode
// with the summary event) and returns err.
func finish(r *reporter.Reporter, err error) error {
	r.Finish(err)
	return err
}

// outputFormat is the value of -o/--output: text or json.
type outputFormat string

func (f *outputFormat) String() string {
	if *f == "" {
		return "text"
	}
	return string(*f)
}

func (f *outputFormat) Set(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("must be text or json")
	}
	*f = outputFormat(s)
	return nil
}

func (f *outputFormat) Type() string { return "text|json" }

// addOutputFlag registers -o/--output on cmd and its subcommands.
func addOutputFlag(cmd *cobra.Command, g *globalOptions) {
	cmd.PersistentFlags().VarP(&g.output, "output", "o", "text: a line per phase; json: JSON Lines on stdout, an event per phase start, end and skip, an info event per line of text, and a summary last")
}

func newRoot() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "kforge",
		Short:         "Bootstrap upstream Kubernetes clusters",
		Long:          "kforge builds upstream Kubernetes clusters on your machines: the PKI, the control plane as static pods, containerd, the kubelet and the network, from binaries and images it can carry into air-gapped sites.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&g.plain, "plain", false, "plain output, one line per step (the default when stdout is not a terminal)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log details to stderr")
	root.PersistentFlags().StringVar(&g.lang, "lang", "", "language of status, explain and doctor: "+strings.Join(messages.Languages(), ", ")+" (default: from LC_ALL, LC_MESSAGES or LANG)")
	root.AddCommand(newInit(g), newConfig(), newVersion())
	for _, c := range commands {
		root.AddCommand(c(g))
	}
	return root
}

// commands are the constructors of further top-level commands; each
// command's file adds its own in an init function.
var commands []func(*globalOptions) *cobra.Command
