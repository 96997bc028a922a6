#![no_std]

#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Sample {
    pub pid: u64,
    pub value: u64,
    pub comm: [u8; 16],
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Key {
    pub pid: u32,
    pub cpu: u32,
}
