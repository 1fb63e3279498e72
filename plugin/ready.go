package outpost

// Ready implements the ready plugin's Readiness: ready once the informers
// have synced, or a snapshot was loaded while the API is away.
func (o *Outpost) Ready() bool { return o.synced() }
