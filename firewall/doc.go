// Package firewall installs a node's firewall plan (plan.Firewall) in the
// kernel through netlink, as one atomic nftables batch, reads it back for
// `offedge firewall diff`, and restores the previous table when an apply is
// not confirmed. It only ever touches the table offedge owns (inet
// offedge): tables of other tools (fail2ban, docker, Proxmox) are neither
// read nor changed.
package firewall
