package tak

// The Ensure* helpers address entities by natural key (HSA-ID, namespace,
// profile name, URL) and create what is missing, which is how orders, imports,
// the demo catalog and tests speak about the catalog.

// EnsureRivProfile returns the profile with the name, creating it if missing.
func (t *Txn) EnsureRivProfile(name string) (RivProfile, error) {
	if p, ok := t.c.RivProfileByName(name); ok {
		return p, nil
	}
	return t.PutRivProfile(RivProfile{Name: name})
}

// EnsureContract returns the contract with the namespace, creating it if missing.
func (t *Txn) EnsureContract(ns string) (Contract, error) {
	if v, ok := t.c.ContractByNamespace(ns); ok {
		return v, nil
	}
	return t.PutContract(Contract{Namespace: ns})
}

// EnsureComponent returns the component with the HSA-ID, creating it if missing.
func (t *Txn) EnsureComponent(hsaID string) (Component, error) {
	if v, ok := t.c.ComponentByHSAID(hsaID); ok {
		return v, nil
	}
	return t.PutComponent(Component{HSAID: hsaID})
}

// EnsureLogicalAddress returns the logical address, creating it if missing.
func (t *Txn) EnsureLogicalAddress(hsaID string) (LogicalAddress, error) {
	if v, ok := t.c.LogicalAddressByHSAID(hsaID); ok {
		return v, nil
	}
	return t.PutLogicalAddress(LogicalAddress{HSAID: hsaID})
}

// EnsureCallAddress returns the call address of a producer at a URL with a
// profile, creating the profile, component and address as needed.
func (t *Txn) EnsureCallAddress(producer, profile, url string) (CallAddress, error) {
	p, err := t.EnsureRivProfile(profile)
	if err != nil {
		return CallAddress{}, err
	}
	comp, err := t.EnsureComponent(producer)
	if err != nil {
		return CallAddress{}, err
	}
	if a, ok := t.c.CallAddressByKey(p.ID, comp.ID, url); ok {
		return a, nil
	}
	return t.PutCallAddress(CallAddress{URL: url, ProfileID: p.ID, ComponentID: comp.ID})
}

// AddRoute creates a route from natural keys, creating what it refers to.
func (t *Txn) AddRoute(contractNS, la, producer, profile, url string, from, to Date) (Route, error) {
	con, err := t.EnsureContract(contractNS)
	if err != nil {
		return Route{}, err
	}
	l, err := t.EnsureLogicalAddress(la)
	if err != nil {
		return Route{}, err
	}
	a, err := t.EnsureCallAddress(producer, profile, url)
	if err != nil {
		return Route{}, err
	}
	return t.PutRoute(Route{LogicalAddressID: l.ID, ContractID: con.ID, CallAddressID: a.ID, From: from, To: to})
}

// AddAuthorization creates an authorization from natural keys, creating what it refers to.
func (t *Txn) AddAuthorization(consumer, contractNS, la, agreement string, from, to Date) (Authorization, error) {
	con, err := t.EnsureContract(contractNS)
	if err != nil {
		return Authorization{}, err
	}
	l, err := t.EnsureLogicalAddress(la)
	if err != nil {
		return Authorization{}, err
	}
	c, err := t.EnsureComponent(consumer)
	if err != nil {
		return Authorization{}, err
	}
	return t.PutAuthorization(Authorization{ConsumerID: c.ID, ContractID: con.ID, LogicalAddressID: l.ID, Agreement: agreement, From: from, To: to})
}
