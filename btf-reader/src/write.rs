//! Writing BTF: type records in id order (the first gets id 1) and an interned string
//! table, behind the standard 24-byte header. Used to rewrite an object's BTF (the loader's
//! map sanitizing) and to make small BTF blobs in tests.

/// BTF being written.
#[derive(Debug, Clone)]
pub struct Writer {
    types: Vec<u8>,
    strings: Vec<u8>,
    last_id: u32,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::with_strings(vec![0])
    }
}

impl Writer {
    /// An empty blob (the string table holds only the empty name).
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A blob whose string table starts as `strings` (its offsets stay valid).
    pub fn with_strings(strings: Vec<u8>) -> Writer {
        Writer {
            types: Vec::new(),
            strings,
            last_id: 0,
        }
    }

    /// The offset of `s`: a string already in the table (starting at a string boundary),
    /// else appended.
    pub fn string(&mut self, s: &str) -> u32 {
        let mut at = 0;
        while at < self.strings.len() {
            let end = self.strings[at..]
                .iter()
                .position(|&b| b == 0)
                .map_or(self.strings.len(), |p| at + p);
            if &self.strings[at..end] == s.as_bytes() && end < self.strings.len() {
                return at as u32;
            }
            at = end + 1;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a type: its name offset, kind and vlen, size or referenced type, then the
    /// words that follow it (members, array info, ...). Returns its id.
    pub fn push(
        &mut self,
        name: u32,
        kind: u32,
        vlen: u32,
        size_or_type: u32,
        extra: &[u32],
    ) -> u32 {
        for w in [name, (kind << 24) | vlen, size_or_type]
            .iter()
            .chain(extra)
        {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.last_id += 1;
        self.last_id
    }

    /// Appends a type record as it stands in another BTF blob. Returns its id.
    pub fn push_raw(&mut self, record: &[u8]) -> u32 {
        self.types.extend_from_slice(record);
        self.last_id += 1;
        self.last_id
    }

    /// The blob: header, types, strings.
    pub fn finish(self) -> Vec<u8> {
        let (types, strings) = (self.types.len() as u32, self.strings.len() as u32);
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in [24u32, 0, types, types, strings] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&self.types);
        b.extend_from_slice(&self.strings);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{kind, Btf};

    #[test]
    fn written_blobs_read_back_with_interned_names() {
        let mut w = Writer::new();
        let int = w.string("int");
        assert_eq!(w.string("int"), int, "interned");
        assert_eq!(w.string(""), 0);
        let i = w.push(int, kind::INT, 0, 4, &[32]);
        let p = w.push(0, kind::PTR, 0, i, &[]);
        let bytes = w.finish();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!((i, p), (1, 2));
        let t = btf.get(p).unwrap();
        assert_eq!((t.kind, t.size_or_type), (kind::PTR, 1));
        assert_eq!(btf.name(btf.get(1).unwrap().name_off), "int");
    }
}
