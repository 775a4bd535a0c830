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
type HSATree struct {
	parent map[string]string
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
func EmptyHSATree() *HSATree { return &HSATree{parent: map[string]string{}} }

// Parent returns the parent of id; an unknown id or a top unit has parent "SE".
func (h *HSATree) Parent(id string) string {
	if p, ok := h.parent[id]; ok && p != "" {
		return p
	}
	return HSARoot
}

// Len is the number of units with a known parent.
func (h *HSATree) Len() int { return len(h.parent) }

// Edges returns the tree as sorted (id, parent) pairs.
func (h *HSATree) Edges() []HSAParent {
	out := make([]HSAParent, 0, len(h.parent))
	for id, p := range h.parent {
		out = append(out, HSAParent{id, p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].HSAID < out[j].HSAID })
	return out
}

// HSATreeFromEdges rebuilds a tree from Edges.
func HSATreeFromEdges(edges []HSAParent) *HSATree {
	m := make(map[string]string, len(edges))
	for _, e := range edges {
		m[e.HSAID] = e.Parent
	}
	return &HSATree{parent: m}
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
	return &HSATree{parent: parent}, nil
}
