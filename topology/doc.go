// Package topology explains an inventory's traffic: how one node reaches a
// service or a site ([Why]), what becomes unreachable, and for whom, when
// nodes are down ([Impact]), and a picture of the whole setup ([Build], drawn
// as SVG, DOT or Mermaid).
//
// It reads an [inventory.Model] and never changes it. Path search follows the
// inventory's reachability rules (private networks only from nodes on them,
// the internet through a public address or a NAT gateway, IPv6-only hosts out
// of reach of IPv4-only ones) and its allow lists; [Impact] runs the same
// search on a view of the model where the down nodes are missing.
package topology
