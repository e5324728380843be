// Package guard holds the HTTP edge's rules for hostile input, written
// against plain strings and bytes rather than net/http so that every HTTP
// server offedge runs applies the same ones: the one normalised request
// path ([NormalizePath]) that routing, access control, static files and
// upstream requests all use, Host validation ([NormalizeHost]), and the
// bounds on byte ranges ([PlanRanges]). docs/security.md lists what each
// refuses and bounds.
package guard
