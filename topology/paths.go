package topology

import "github.com/offedge/offedge/reach"

// Path is one way a node reaches a destination, hop by hop ([reach.Path]).
type Path = reach.Path

// Block is the allow list that refuses a path ([reach.Block]).
type Block = reach.Block
