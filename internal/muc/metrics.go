package muc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are the rooms live on this node and their occupants, counted
// when scraped.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bluetick_muc_rooms",
			Help: "Group chat rooms loaded on this node (a room with no occupant stays in the store only)."},
			func() float64 {
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(len(s.rooms))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bluetick_muc_occupants",
			Help: "Occupants of the rooms loaded on this node (one per joined resource)."},
			func() float64 {
				n := 0
				for _, r := range s.loaded() {
					r.mu.Lock()
					n += len(r.occupants)
					r.mu.Unlock()
				}
				return float64(n)
			}),
	}
}
