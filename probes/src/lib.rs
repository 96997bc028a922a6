//! Types shared by the probes and anyone reading their records.
#![no_std]
