//! Record/key/value types read from the object's DWARF. Pure: works on bytes.
//!
//! The whole type graph is read once into a table keyed by `.debug_info` offset; types
//! are then resolved on demand into the self-contained [`Type`] tree the decoder walks.
//! Relocations are not applied: BPF objects use REL relocations whose addends are stored
//! in place, and section symbols are at 0, so in-place offsets are already right.

use std::borrow::Cow;
use std::collections::HashMap;

use gimli::{constants, AttributeValue, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

/// Errors reading debug info.
#[derive(Debug, thiserror::Error)]
pub enum DwarfError {
    /// The container could not be read.
    #[error("reading object")]
    Object(#[from] object::Error),
    /// The DWARF itself is malformed.
    #[error("reading DWARF")]
    Gimli(#[from] gimli::Error),
}

/// A decoded type: everything the record decoder needs, no references back into DWARF.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Integer of 1, 2, 4, 8 or 16 bytes.
    Int {
        /// bytes
        size: u32,
        /// signedness
        signed: bool,
    },
    /// Boolean.
    Bool {
        /// bytes
        size: u32,
    },
    /// C `char` (1 byte) or Rust `char` (4 bytes, a Unicode scalar).
    Char {
        /// bytes
        size: u32,
    },
    /// IEEE float of 4 or 8 bytes.
    Float {
        /// bytes
        size: u32,
    },
    /// C-like enum: printed by variant name.
    Enum {
        /// bytes
        size: u32,
        /// whether the underlying integer is signed
        signed: bool,
        /// value -> name
        variants: Vec<(i128, String)>,
    },
    /// Struct with named fields at byte offsets.
    Struct {
        /// type name
        name: String,
        /// bytes
        size: u32,
        /// fields
        fields: Vec<Field>,
    },
    /// Fixed-size array.
    Array {
        /// element type
        elem: Box<Type>,
        /// element count
        count: u32,
    },
    /// Pointer: printed as a number.
    Pointer {
        /// bytes
        size: u32,
    },
    /// Anything else (unions, data-carrying Rust enums, unknown): printed as hex.
    Opaque {
        /// bytes
        size: u32,
    },
}

/// A short name for a type, as messages show it: `ExecEvent`, `u32`, `i64`, `[u8; 16]`.
pub fn label(t: &Type) -> String {
    match t {
        Type::Struct { name, .. } if !name.is_empty() => name.clone(),
        Type::Int { size, signed } => format!("{}{}", if *signed { 'i' } else { 'u' }, size * 8),
        Type::Bool { .. } => "bool".to_owned(),
        Type::Char { .. } => "char".to_owned(),
        Type::Float { size } => format!("f{}", size * 8),
        Type::Array { elem, count } => format!("[{}; {count}]", label(elem)),
        Type::Pointer { .. } => "pointer".to_owned(),
        Type::Enum { .. } => "enum".to_owned(),
        other => format!("{} bytes", other.size()),
    }
}

/// A struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Name (`__N` for unnamed).
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u32,
    /// Type.
    pub ty: Type,
}

impl Type {
    /// Size in bytes.
    pub fn size(&self) -> u32 {
        match self {
            Type::Int { size, .. }
            | Type::Bool { size }
            | Type::Char { size }
            | Type::Float { size }
            | Type::Enum { size, .. }
            | Type::Struct { size, .. }
            | Type::Pointer { size }
            | Type::Opaque { size } => *size,
            Type::Array { elem, count } => elem.size().saturating_mul(*count),
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Base {
        encoding: u8,
        size: u32,
    },
    Struct {
        name: String,
        size: u32,
        union: bool,
        variant: bool,
        members: Vec<(String, u32, Option<u64>)>,
        params: Vec<(String, Option<u64>)>,
    },
    Enum {
        size: u32,
        underlying: Option<u64>,
        enumerators: Vec<(i128, String)>,
    },
    Array {
        elem: Option<u64>,
        counts: Vec<u32>,
    },
    Pointer {
        size: u32,
    },
    Alias {
        ty: Option<u64>,
    },
}

/// Every type and variable of one object.
#[derive(Debug, Default)]
pub struct TypeTable {
    nodes: HashMap<u64, Node>,
    variables: HashMap<String, u64>,
    named: HashMap<String, u64>,
}

const MAX_DEPTH: u32 = 24;

/// Roughly the most memory one resolved [`Type`] may take. Types are trees: a struct
/// used by several members is copied into each, so a 4 KiB object nesting structs of
/// four members twelve deep expands to 16 million fields (seen reading `resolve`, then
/// confirmed with the `dwarf` fuzz target on a hand-made seed). Past the budget, members are left out and types become [`Type::Opaque`].
const MAX_TYPE_BYTES: usize = 16 << 20;

/// What one node of a resolved type is charged.
const NODE_BYTES: usize = std::mem::size_of::<Field>();

/// What is left of [`MAX_TYPE_BYTES`] while resolving one type.
struct Budget(usize);

impl Budget {
    /// Charges `n` if anything is left (the last charge may overdraw).
    fn take(&mut self, n: usize) -> bool {
        if self.0 == 0 {
            return false;
        }
        self.0 = self.0.saturating_sub(n);
        true
    }
}

type R<'a> = EndianSlice<'a, RunTimeEndian>;

fn type_ref(
    entry: &gimli::DebuggingInformationEntry<R<'_>>,
    header: &gimli::UnitHeader<R<'_>>,
) -> Option<u64> {
    match entry.attr_value(constants::DW_AT_type)? {
        AttributeValue::UnitRef(o) => o.to_debug_info_offset(header).map(|o| o.0 as u64),
        AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
        _ => None,
    }
}

fn udata(entry: &gimli::DebuggingInformationEntry<R<'_>>, at: constants::DwAt) -> Option<u64> {
    entry.attr(at)?.udata_value()
}

/// The type node a DWARF entry with tag `entry.tag()` describes, if it is a type.
fn type_node(
    entry: &gimli::DebuggingInformationEntry<R<'_>>,
    name: Option<&str>,
    size: u32,
    ty: Option<u64>,
) -> Option<Node> {
    let tag = entry.tag();
    match tag {
        constants::DW_TAG_base_type => Some(Node::Base {
            encoding: udata(entry, constants::DW_AT_encoding).unwrap_or(0) as u8,
            size,
        }),
        constants::DW_TAG_structure_type
        | constants::DW_TAG_class_type
        | constants::DW_TAG_union_type => Some(Node::Struct {
            name: name.unwrap_or_default().to_owned(),
            size,
            union: tag == constants::DW_TAG_union_type,
            variant: false,
            members: Vec::new(),
            params: Vec::new(),
        }),
        constants::DW_TAG_enumeration_type => Some(Node::Enum {
            size,
            underlying: ty,
            enumerators: Vec::new(),
        }),
        constants::DW_TAG_array_type => Some(Node::Array {
            elem: ty,
            counts: Vec::new(),
        }),
        constants::DW_TAG_pointer_type
        | constants::DW_TAG_reference_type
        | constants::DW_TAG_rvalue_reference_type => Some(Node::Pointer {
            size: if size == 0 { 8 } else { size },
        }),
        constants::DW_TAG_typedef
        | constants::DW_TAG_const_type
        | constants::DW_TAG_volatile_type
        | constants::DW_TAG_restrict_type
        | constants::DW_TAG_atomic_type => Some(Node::Alias { ty }),
        _ => None,
    }
}

impl TypeTable {
    /// Reads the DWARF of a parsed object; an object without debug info gives an empty
    /// table.
    pub fn from_file(file: &crate::elf::Elf<'_>) -> Result<Self, DwarfError> {
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, DwarfError> {
            Ok(match file.section_by_name(id.name()) {
                Some(s) => s.uncompressed_data()?,
                None => Cow::Borrowed(&[]),
            })
        })?;
        let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
        let mut table = TypeTable::default();
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            table.read_unit(&dwarf, &unit)?;
        }
        Ok(table)
    }

    fn read_unit(
        &mut self,
        dwarf: &gimli::Dwarf<R<'_>>,
        unit: &gimli::Unit<R<'_>>,
    ) -> Result<(), DwarfError> {
        let mut stack: Vec<(isize, u64)> = Vec::new();
        let mut cursor = unit.entries();
        while let Some(entry) = cursor.next_dfs()? {
            let Some(off) = entry
                .offset()
                .to_debug_info_offset(&unit.header)
                .map(|o| o.0 as u64)
            else {
                continue;
            };
            let depth = entry.depth();
            while stack.last().is_some_and(|&(d, _)| d >= depth) {
                stack.pop();
            }
            let parent = stack.last().map(|&(_, p)| p);
            if entry.has_children() {
                stack.push((depth, off));
            }
            let name = entry
                .attr_value(constants::DW_AT_name)
                .and_then(|v| dwarf.attr_string(unit, v).ok())
                .map(|s| s.to_string_lossy().into_owned());
            let size = udata(entry, constants::DW_AT_byte_size).unwrap_or(0) as u32;
            let ty = type_ref(entry, &unit.header);
            let declaration = entry.attr(constants::DW_AT_declaration).is_some();
            let tag = entry.tag();
            let node = type_node(entry, name.as_deref(), size, ty);
            if let Some(node) = node {
                let nameable = !declaration
                    && tag != constants::DW_TAG_const_type
                    && tag != constants::DW_TAG_volatile_type;
                if let (Some(n), true) = (&name, nameable) {
                    self.named.entry(n.clone()).or_insert(off);
                }
                self.nodes.insert(off, node);
                continue;
            }
            // Children of types and variables.
            self.add_child(entry, parent, name, ty);
        }
        Ok(())
    }

    /// Records `entry`, a member, enumerator, array bound, template parameter or variable,
    /// in the type node `parent` (or the variable table).
    fn add_child(
        &mut self,
        entry: &gimli::DebuggingInformationEntry<R<'_>>,
        parent: Option<u64>,
        name: Option<String>,
        ty: Option<u64>,
    ) {
        let tag = entry.tag();
        let parent_node = parent.and_then(|p| self.nodes.get_mut(&p));
        match (tag, parent_node) {
            (constants::DW_TAG_member, Some(Node::Struct { members, .. })) => {
                if entry.attr(constants::DW_AT_bit_size).is_some()
                    || entry.attr(constants::DW_AT_data_bit_offset).is_some()
                {
                    return; // bitfields are not decoded
                }
                let offset = match entry.attr_value(constants::DW_AT_data_member_location) {
                    Some(v) => v.udata_value().unwrap_or(0) as u32,
                    None => 0,
                };
                let fname = name.unwrap_or_else(|| format!("__{}", members.len()));
                members.push((fname, offset, ty));
            }
            (constants::DW_TAG_template_type_parameter, Some(Node::Struct { params, .. })) => {
                params.push((name.unwrap_or_default(), ty));
            }
            (constants::DW_TAG_variant_part, Some(Node::Struct { variant, .. })) => {
                *variant = true;
            }
            (constants::DW_TAG_enumerator, Some(Node::Enum { enumerators, .. })) => {
                let value = match entry.attr(constants::DW_AT_const_value) {
                    Some(a) => match a.value() {
                        AttributeValue::Sdata(v) => i128::from(v),
                        AttributeValue::Udata(v) => i128::from(v),
                        AttributeValue::Data1(v) => i128::from(v),
                        AttributeValue::Data2(v) => i128::from(v),
                        AttributeValue::Data4(v) => i128::from(v),
                        AttributeValue::Data8(v) => i128::from(v),
                        _ => return,
                    },
                    None => return,
                };
                enumerators.push((value, name.unwrap_or_default()));
            }
            (constants::DW_TAG_subrange_type, Some(Node::Array { counts, .. })) => {
                let count = if let Some(c) = udata(entry, constants::DW_AT_count) {
                    c
                } else if let Some(u) = entry.attr(constants::DW_AT_upper_bound) {
                    u.udata_value().map_or(0, |u| u.saturating_add(1))
                } else {
                    0
                };
                counts.push(u32::try_from(count).unwrap_or(u32::MAX));
            }
            (constants::DW_TAG_variable, _) => {
                if let (Some(n), Some(t)) = (name, ty) {
                    self.variables.entry(n).or_insert(t);
                }
            }
            _ => {}
        }
    }

    fn strip(&self, mut off: u64) -> Option<(u64, &Node)> {
        for _ in 0..MAX_DEPTH {
            match self.nodes.get(&off)? {
                Node::Alias { ty } => off = (*ty)?,
                n => return Some((off, n)),
            }
        }
        None
    }

    /// The type at `off`, within [`MAX_TYPE_BYTES`].
    fn resolve(&self, off: Option<u64>) -> Type {
        self.resolve_in(off, 0, &mut Budget(MAX_TYPE_BYTES))
    }

    fn resolve_in(&self, off: Option<u64>, depth: u32, budget: &mut Budget) -> Type {
        let Some(off) = off else {
            return Type::Opaque { size: 0 }; // void
        };
        if depth > MAX_DEPTH {
            return Type::Opaque { size: 0 };
        }
        let Some((_, node)) = self.strip(off) else {
            return Type::Opaque { size: 0 };
        };
        if !budget.take(NODE_BYTES) {
            return Type::Opaque {
                size: self.shallow_size(node, depth),
            };
        }
        match node {
            Node::Base { encoding, size } => {
                let size = *size;
                match gimli::DwAte(*encoding) {
                    constants::DW_ATE_boolean => Type::Bool { size },
                    constants::DW_ATE_signed_char | constants::DW_ATE_unsigned_char => {
                        Type::Char { size }
                    }
                    constants::DW_ATE_UTF => Type::Char { size },
                    constants::DW_ATE_float => Type::Float { size },
                    constants::DW_ATE_signed => Type::Int { size, signed: true },
                    constants::DW_ATE_unsigned => Type::Int {
                        size,
                        signed: false,
                    },
                    _ => Type::Opaque { size },
                }
            }
            Node::Struct {
                name,
                size,
                union,
                variant,
                members,
                ..
            } => {
                if *union || *variant {
                    return Type::Opaque { size: *size };
                }
                budget.take(name.len());
                let mut fields = Vec::new();
                for (n, o, t) in members {
                    // Out of budget: the remaining members are left out.
                    if !budget.take(n.len()) {
                        break;
                    }
                    fields.push(Field {
                        name: n.clone(),
                        offset: *o,
                        ty: self.resolve_in(*t, depth + 1, budget),
                    });
                }
                Type::Struct {
                    name: name.clone(),
                    size: *size,
                    fields,
                }
            }
            Node::Enum {
                size,
                underlying,
                enumerators,
            } => {
                budget.take(
                    enumerators
                        .iter()
                        .fold(0usize, |n, (_, e)| n.saturating_add(NODE_BYTES + e.len())),
                );
                let signed = matches!(
                    underlying.map(|u| self.resolve_in(Some(u), depth + 1, budget)),
                    Some(Type::Int { signed: true, .. })
                ) || enumerators.iter().any(|(v, _)| *v < 0);
                Type::Enum {
                    size: *size,
                    signed,
                    variants: enumerators.clone(),
                }
            }
            Node::Array { elem, counts } => {
                let mut ty = self.resolve_in(*elem, depth + 1, budget);
                let dims = if counts.is_empty() {
                    &[0][..]
                } else {
                    &counts[..]
                };
                budget.take(dims.len().saturating_mul(NODE_BYTES));
                for &count in dims.iter().rev() {
                    ty = Type::Array {
                        elem: Box::new(ty),
                        count,
                    };
                }
                ty
            }
            Node::Pointer { size } => Type::Pointer { size: *size },
            Node::Alias { .. } => Type::Opaque { size: 0 },
        }
    }

    /// The size of a type left opaque for want of budget: without walking its members
    /// (arrays of more than a few dimensions count as 0).
    fn shallow_size(&self, node: &Node, depth: u32) -> u32 {
        match node {
            Node::Base { size, .. }
            | Node::Struct { size, .. }
            | Node::Enum { size, .. }
            | Node::Pointer { size } => *size,
            Node::Array { elem, counts } if !counts.is_empty() && counts.len() <= 8 => {
                let elem = match elem.and_then(|e| self.strip(e)) {
                    Some((_, n)) if depth < MAX_DEPTH => self.shallow_size(n, depth + 1),
                    _ => 0,
                };
                counts.iter().fold(elem, |s, &c| s.saturating_mul(c))
            }
            Node::Array { .. } | Node::Alias { .. } => 0,
        }
    }

    /// The type named `name` (struct, enum, typedef or base type).
    pub fn named_type(&self, name: &str) -> Option<Type> {
        let off = *self.named.get(name)?;
        Some(self.resolve(Some(off)))
    }

    /// The named structs (not unions) of exactly `size` bytes, by name: the candidates
    /// for a record the program outputs with `sizeof(struct ...)`.
    pub fn structs_of_size(&self, size: u32) -> Vec<(String, Type)> {
        let mut out: Vec<(String, Type)> = self
            .named
            .iter()
            .filter(|(_, off)| {
                matches!(self.nodes.get(off), Some(Node::Struct { size: s, union: false, .. }) if *s == size)
            })
            .map(|(name, off)| (name.clone(), self.resolve(Some(*off))))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The type of the global variable `name`.
    pub fn variable_type(&self, name: &str) -> Option<Type> {
        let off = *self.variables.get(name)?;
        Some(self.resolve(Some(off)))
    }

    fn variable_params(&self, name: &str) -> Option<&[(String, Option<u64>)]> {
        let off = *self.variables.get(name)?;
        match self.strip(off)?.1 {
            Node::Struct { params, .. } => Some(params),
            _ => None,
        }
    }

    /// The template parameters of the innermost generic wrapper of perf map `name`: a
    /// static whose struct has one member of a generic struct type is that member's
    /// (redbpf's XDP `PerfMap<T>` wraps `PerfMapBase<MapData<T>>`, whose records are
    /// `MapData<T>`), else the static's own.
    fn record_params(&self, name: &str) -> Option<&[(String, Option<u64>)]> {
        let mut off = *self.variables.get(name)?;
        for _ in 0..8 {
            let Node::Struct {
                params, members, ..
            } = self.strip(off)?.1
            else {
                return None;
            };
            let inner = match members.as_slice() {
                [(_, _, Some(t))] => self.strip(*t).filter(
                    |(_, n)| matches!(n, Node::Struct { params, .. } if !params.is_empty()),
                ),
                _ => None,
            };
            match inner {
                Some((t, _)) => off = t,
                None => return Some(params),
            }
        }
        None
    }

    /// Record type of a redbpf `PerfMap<T>` static: its template parameter `T` (for XDP
    /// perf maps, `MapData<T>`).
    pub fn perf_record_type(&self, map: &str) -> Option<Type> {
        let params = self.record_params(map)?;
        let (_, t) = params
            .iter()
            .find(|(n, _)| n == "T")
            .or_else(|| params.first())?;
        let ty = self.resolve(*t);
        (ty.size() > 0).then_some(ty)
    }

    /// Key and value types of a map: from the redbpf `MAP_BTF_<map>` holder in `maps.ext`
    /// (fields `key_type`/`value_type`, or `key`/`value`), else the map static's generic
    /// parameters (`HashMap<K, V>`, `Array<T>`).
    pub fn map_kv_types(&self, map: &str) -> (Option<Type>, Option<Type>) {
        // libbpf's BPF_ANNOTATE_KV_PAIR(map, K, V): `struct ____btf_map_<map> { K key; V value; }`.
        let annotation = self
            .named_type(&format!("____btf_map_{map}"))
            .or_else(|| self.variable_type(&format!("MAP_BTF_{map}")));
        if let Some(Type::Struct { fields, .. }) = annotation {
            let get = |a: &str, b: &str| {
                fields
                    .iter()
                    .find(|f| f.name == a || f.name == b)
                    .map(|f| f.ty.clone())
            };
            return (get("key_type", "key"), get("value_type", "value"));
        }
        let Some(params) = self.variable_params(map) else {
            return (None, None);
        };
        let ty = |i: usize| params.get(i).map(|(_, t)| self.resolve(*t));
        match params.len() {
            1 => (None, ty(0)),
            2 => (ty(0), ty(1)),
            _ => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_compose() {
        let t = Type::Array {
            elem: Box::new(Type::Int {
                size: 4,
                signed: false,
            }),
            count: 3,
        };
        assert_eq!(t.size(), 12);
    }

    fn count_nodes(t: &Type) -> usize {
        match t {
            Type::Struct { fields, .. } => {
                1 + fields.iter().map(|f| count_nodes(&f.ty)).sum::<usize>()
            }
            Type::Array { elem, .. } => 1 + count_nodes(elem),
            _ => 1,
        }
    }

    #[test]
    fn nested_structs_expand_within_a_budget() {
        // Seen in review, confirmed with fuzz/ (target `dwarf`, hand-made seed):
        // struct s_i { struct s_{i-1} a, b, c, d; }
        // twelve deep is a 4 KiB object whose s12 resolved to 16 million fields.
        let mut table = TypeTable::default();
        table.nodes.insert(
            0,
            Node::Base {
                encoding: constants::DW_ATE_signed.0,
                size: 4,
            },
        );
        for i in 1..=12u64 {
            let members = ["a", "b", "c", "d"]
                .iter()
                .enumerate()
                .map(|(k, n)| ((*n).to_owned(), k as u32 * 4u32.pow(i as u32), Some(i - 1)))
                .collect();
            table.nodes.insert(
                i,
                Node::Struct {
                    name: format!("s{i}"),
                    size: 4u32.pow(i as u32 + 1),
                    union: false,
                    variant: false,
                    members,
                    params: Vec::new(),
                },
            );
            table.named.insert(format!("s{i}"), i);
        }
        let small = table.named_type("s3").unwrap();
        assert_eq!(count_nodes(&small), 1 + 4 + 16 + 64);
        let big = table.named_type("s12").unwrap();
        assert_eq!(big.size(), 4u32.pow(13));
        assert!(count_nodes(&big) <= MAX_TYPE_BYTES / NODE_BYTES + 1);
        let Type::Struct { fields, .. } = &big else {
            panic!("s12 is a struct: {big:?}");
        };
        assert_eq!(fields[0].name, "a");
    }

    #[test]
    fn no_debug_info_gives_empty_table_and_garbage_errors() {
        assert!(crate::object::Object::parse("g", b"garbage".to_vec()).is_err());
    }
}
