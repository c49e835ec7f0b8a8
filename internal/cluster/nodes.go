package cluster

// Nodes lists the cluster's live nodes (a recent heartbeat), this one
// included, sorted: what `bluetick status` shows.
func (n *Node) Nodes() []string { return n.liveNodes() }
