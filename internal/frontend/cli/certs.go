package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/pki"
)

// CertsInitOptions are the flags of `tuxtape certs init`.
type CertsInitOptions struct {
	Out     string
	Hosts   []string
	Clients []string
}

func newCertsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the certificates for TLS and mutual TLS between the server, clients and agents",
	}
	var o CertsInitOptions
	initCmd := &cobra.Command{
		Use:   "init --out DIR [--host NAME-OR-IP …] [--client NAME …]",
		Short: "Make a local CA, a server certificate and client certificates",
		Long: `init makes a certificate authority of your own in DIR (ca.pem, ca-key.pem), a
server certificate signed by it (server.pem, server-key.pem) valid for every
--host (DNS names and IP addresses: the address agents reach the server by,
e.g. 10.0.2.2 from a QEMU guest), and one client certificate per --client
(client-NAME.pem, client-NAME-key.pem) for mutual TLS. Keys are written
0600. Give ca.pem to every client (--ca); keep ca-key.pem offline.

An existing CA in DIR is never replaced: hosts already trust it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Out == "" {
				return usagef("certs init needs --out DIR")
			}
			files, err := pki.Init(pki.Options{Dir: o.Out, Hosts: o.Hosts, Clients: o.Clients})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "CA:     %s (key %s)\nserver: %s (key %s)\n", files.CA, files.CAKey, files.Server, files.ServerKey)
			names := make([]string, 0, len(files.Clients))
			for n := range files.Clients {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintf(g.Stdout, "client %s: %s (key %s)\n", n, files.Clients[n][0], files.Clients[n][1])
			}
			return nil
		},
	}
	f := initCmd.Flags()
	f.StringVar(&o.Out, "out", "", "directory to write the certificates and keys to (required)")
	f.StringArrayVar(&o.Hosts, "host", nil, "a DNS name or IP address of the server (repeat; default localhost, 127.0.0.1, ::1)")
	f.StringArrayVar(&o.Clients, "client", nil, "make a client certificate with this name (repeat)")
	cmd.AddCommand(initCmd)
	return cmd
}
