package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/config"
)

func newConfig() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print and check kforge cluster files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "print-defaults",
		Short: "Print a complete, commented cluster file with every default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.DefaultsYAML())
			return err
		},
	})
	var file string
	validate := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a cluster file: unknown fields, types and values",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := config.Load(config.ExpandHome(file))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: Kubernetes %s, %d host(s), cni %s\n", file, c.KubernetesVersion, len(c.Hosts), c.CNI.Plugin)
			return nil
		},
	}
	validate.Flags().StringVarP(&file, "file", "f", "", "cluster file to check")
	_ = validate.MarkFlagRequired("file")
	cmd.AddCommand(validate)
	return cmd
}
