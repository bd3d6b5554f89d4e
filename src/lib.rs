//! # partlog
//!
//! The storage engine for partition logs, the layer that sits under a Kafka-style broker: one
//! partition is an append-only log of Kafka v2 record batches, cut into memory-mapped segment files
//! named by base offset, each with a sparse offset index and a time index.
//!
//! Data flows one way: bytes → [`batch`] → [`index`] → [`segment`] → [`log`] → [`replica`] (leader
//! epochs, fetch, high watermark, [`replica::ReplicaSet`]) → [`topic`] (partitions, Kafka's
//! partitioner, consumer groups). Lower layers never call upward. `unsafe` code lives in two
//! private modules: `mmap` (maps and their rules) and `batch::crc_fold` (a SIMD CRC-32C, one
//! feature-checked call); the durability seam (`durability`) is empty outside tests.
//!
//! ```
//! use partlog::{Config, Log, batch::SimpleRecord};
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), Config::default())?;
//! let info = log.append(&[SimpleRecord::new(1_600_000_000_000, Some("key"), Some("value"))])?;
//! assert_eq!(info.first_offset, 0);
//! let read = log.read(0, 1 << 20)?;
//! let record = read.batches[0].records()?.next().unwrap()?;
//! assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]
#![warn(missing_docs)]

pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod config;
mod durability;
mod error;
#[doc(hidden)]
pub mod fs;
mod id;
pub mod index;
pub mod log;
mod mmap;
pub mod replica;
pub mod segment;
pub mod topic;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::{Error, Result};
pub use log::{AppendInfo, Log, LogRead, OpenReport};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
