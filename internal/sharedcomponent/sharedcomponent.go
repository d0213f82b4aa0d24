// Package sharedcomponent lets the logs and traces pipelines of one component
// id share a single instance (one BPF program set, one scoring state), the way
// the collector's own OTLP receiver does. Start and Shutdown run once, however
// many pipelines hold the instance.
package sharedcomponent

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds one shared instance per key, usually the component.ID.
type Map[K comparable, V component.Component] struct {
	mu    sync.Mutex
	items map[K]*Component[V]
}

// NewMap returns an empty map.
func NewMap[K comparable, V component.Component]() *Map[K, V] {
	return &Map[K, V]{items: map[K]*Component[V]{}}
}

// LoadOrStore returns the instance for key, creating it with create on first
// use. The instance is removed from the map when it shuts down, so a
// collector reload creates a fresh one.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.items[key]; ok {
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{value: v}
	c.onShutdown = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.items[key] == c {
			delete(m.items, key)
		}
	}
	m.items[key] = c
	return c, nil
}

// Component wraps a shared instance; it is itself a component.Component.
type Component[V component.Component] struct {
	value      V
	onShutdown func()

	startOnce    sync.Once
	startErr     error
	shutdownOnce sync.Once
	shutdownErr  error
}

// Unwrap returns the shared instance.
func (c *Component[V]) Unwrap() V { return c.value }

// Start starts the instance once.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.startOnce.Do(func() { c.startErr = c.value.Start(ctx, host) })
	return c.startErr
}

// Shutdown shuts the instance down once and forgets it.
func (c *Component[V]) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		c.shutdownErr = c.value.Shutdown(ctx)
		c.onShutdown()
	})
	return c.shutdownErr
}
