//go:build race

package router

// hopReserveMax is 0 in race builds (tests): the race detector shadows
// every allocation, which makes memory reserved and never written
// resident, and the tests make hundreds of routers and nodes. Stores grow
// as calls come instead; TestHopStoreReserves sets the production cap to
// test the reservation itself.
var hopReserveMax = 0
