//! The bank adapter for consentnet: the unified Open Banking API, consent enforcement and bank connectors.
//!
//! It reads consent state through a trait and never knows libp2p. At this milestone it
//! only reserves its place in the workspace; its types arrive with the adapter milestone.
