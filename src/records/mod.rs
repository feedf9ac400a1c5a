//! Record batches and compression.
