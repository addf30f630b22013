//! Example service (placeholder).
