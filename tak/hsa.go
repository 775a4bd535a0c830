package tak

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// HSARoot is the root of the HSA tree, and the parent of every unknown unit.
const HSARoot = "SE"

// HSATree maps an HSA-ID to its parent's HSA-ID. Lookups are case-sensitive,
// as in the reference hsa-cache. It is immutable once built.
//
// The tree is a flat table keyed by the hash of the exact-case HSA-ID (see
// flat.go). A node carries what a climb needs for the next level without
// hashing a string: the parent's exact-case hash (its own key in the tree)
// and its lower-case hash (its part of a routing-index key). The names are
// kept for traces, Parent and Edges only.
type HSATree struct {
	nodes flat[hsaNode]
}

type hsaNode struct {
	parentH hkey   // hsaKey(parent): the parent's node
	parentL hkey   // case-insensitive logical-address hash of parent
	parent  string // "" is kept as given (Edges) and climbs to the root
	id      string
}

// rootNode stands for the parent of the root, of unknown units and of units
// with an empty parent.
var rootNode = func() hsaNode {
	lo, ex := laKeys(HSARoot)
	return hsaNode{parentH: ex, parentL: lo, parent: HSARoot}
}()

// rootKey is hsaKey(HSARoot): a climb ends by hash, never comparing strings.
var rootKey = rootNode.parentH

func newHSATree(parent map[string]string) *HSATree {
	h := &HSATree{}
	tag := txnGen.Add(1)
	for id, p := range parent {
		h.set(id, p, tag)
	}
	return h
}

// set is for building only: a tree is never written once returned.
func (h *HSATree) set(id, parent string, tag uint64) {
	n := hsaNode{parent: parent, id: id}
	if parent != "" {
		n.parentL, n.parentH = laKeys(parent)
	}
	h.nodes.set(hsaKey(id), n, tag)
}

// up returns the node of the unit whose exact-case hash is key, which names
// its parent and carries the parent's hashes; for an unknown unit or an empty
// parent it returns rootNode, whose parent is the root.
func (h *HSATree) up(key hkey) *hsaNode {
	hk, n, k := h.nodes.home(key)
	if hk == nil {
		return &rootNode
	}
	// Read the node before comparing the key: see flat.home.
	if named := n.parent != ""; *hk == k && named {
		return n
	}
	switch *hk {
	case hkey{}:
		return &rootNode
	case k:
		return &rootNode // an empty parent
	}
	if n = h.nodes.scan(k); n != nil && n.parent != "" {
		return n
	}
	return &rootNode
}

// HSAUnit is one unit of an HSA file.
type HSAUnit struct {
	HSAID string `json:"hsaId"`
	DN    string `json:"dn"`
	Name  string `json:"name"`
}

// HSAParent is one edge of a built tree, the form the tree travels in
// through the Raft log and snapshots.
type HSAParent struct {
	HSAID  string `json:"id"`
	Parent string `json:"parent"`
}

// EmptyHSATree returns a tree in which every unit's parent is the root.
func EmptyHSATree() *HSATree { return &HSATree{} }

// Parent returns the parent of id; an unknown id or a top unit has parent "SE".
func (h *HSATree) Parent(id string) string { return h.up(hsaKey(id)).parent }

// Len is the number of units with a known parent.
func (h *HSATree) Len() int { return h.nodes.Len() }

// Edges returns the tree as sorted (id, parent) pairs.
func (h *HSATree) Edges() []HSAParent {
	out := make([]HSAParent, 0, h.nodes.Len())
	h.nodes.each(func(_ hkey, n *hsaNode) bool {
		out = append(out, HSAParent{n.id, n.parent})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].HSAID < out[j].HSAID })
	return out
}

// HSATreeFromEdges rebuilds a tree from Edges.
func HSATreeFromEdges(edges []HSAParent) *HSATree {
	h := &HSATree{}
	tag := txnGen.Add(1)
	for _, e := range edges {
		h.set(e.HSAID, e.Parent, tag) // a later duplicate wins, as it always has
	}
	return h
}

// ParseHSAFile reads the hsa-cache XML format (FileGetHsaUnitsResponse), by
// local names only as the reference parser does. Invalid units (blank id,
// missing DN or name) are skipped and returned as warnings.
func ParseHSAFile(r io.Reader) (units []HSAUnit, warnings []string, err error) {
	d := xml.NewDecoder(r)
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "iso-8859-1") || strings.EqualFold(label, "latin1") {
			return latin1Reader{in}, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	var cur *HSAUnit
	var field string
	var hasDN, hasName bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("parse HSA file: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "hsaUnit":
				cur, hasDN, hasName = &HSAUnit{}, false, false
			case "hsaIdentity", "DN", "name":
				field = t.Name.Local
				if cur != nil && field == "DN" {
					hasDN = true
				}
				if cur != nil && field == "name" {
					hasName = true
				}
			}
		case xml.CharData:
			if cur == nil {
				continue
			}
			switch field {
			case "hsaIdentity":
				cur.HSAID += string(t)
			case "DN":
				cur.DN += string(t)
			case "name":
				cur.Name += string(t)
			}
		case xml.EndElement:
			field = ""
			if t.Name.Local == "hsaUnit" && cur != nil {
				cur.HSAID = strings.TrimSpace(cur.HSAID)
				if cur.HSAID == "" || !hasDN || !hasName {
					warnings = append(warnings, fmt.Sprintf("unit %q skipped: hsaIdentity, DN and name are required", cur.HSAID))
				} else {
					units = append(units, *cur)
				}
				cur = nil
			}
		}
	}
	return units, warnings, nil
}

type latin1Reader struct{ r io.Reader }

func (l latin1Reader) Read(p []byte) (int, error) {
	// Each Latin-1 byte becomes at most two UTF-8 bytes: read half.
	buf := make([]byte, len(p)/2+1)
	n, err := l.r.Read(buf[:max(1, len(p)/2)])
	out := p[:0]
	for _, b := range buf[:n] {
		if b < 0x80 {
			out = append(out, b)
		} else {
			out = append(out, 0xC0|b>>6, 0x80|b&0x3F)
		}
	}
	return len(out), err
}

// BuildHSATree links units into a tree: a unit's parent is the unit with the
// nearest ancestor DN (leading RDNs dropped one by one). A duplicate DN fails
// the whole build, as in the reference, so a broken file never replaces a
// good tree.
func BuildHSATree(units []HSAUnit) (*HSATree, error) {
	byDN := make(map[string]string, len(units))
	norm := func(dn string) string {
		parts := strings.Split(dn, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return strings.Join(parts, ",")
	}
	for _, u := range units {
		dn := norm(u.DN)
		if other, dup := byDN[dn]; dup {
			return nil, fmt.Errorf("build HSA tree: DN %q used by both %s and %s", u.DN, other, u.HSAID)
		}
		byDN[dn] = u.HSAID
	}
	parent := make(map[string]string, len(units))
	for _, u := range units {
		dn := norm(u.DN)
		for {
			i := strings.IndexByte(dn, ',')
			if i < 0 {
				break
			}
			dn = dn[i+1:]
			if p, ok := byDN[dn]; ok {
				parent[u.HSAID] = p
				break
			}
		}
	}
	return newHSATree(parent), nil
}
