//! XML bodies of a bank core (ISO 20022 camt and pain messages): an answer read as a JSON tree, so a mapping's JSON pointers select into it, and request values escaped for XML. An element is an object of its children (a repeated child an array), its attributes as `@name` and its text as `$`, or just its text when it has neither; namespace prefixes are dropped. No DTD is processed.

use serde_json::{Map, Value};

/// Deepest element nesting read.
pub const MAX_DEPTH: usize = 64;
/// Most XML nodes read from one answer.
pub const MAX_NODES: u32 = 1_000_000;

/// The XML document `text` as a JSON tree: `{root name: root}`.
pub fn to_json(text: &str) -> Result<Value, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let document = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| format!("not XML: {e}"))?;
    let root = document.root_element();
    let mut top = Map::new();
    top.insert(root.tag_name().name().to_owned(), element(root, 0)?);
    Ok(Value::Object(top))
}

fn element(node: roxmltree::Node<'_, '_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("XML nested deeper than {MAX_DEPTH} elements"));
    }
    let text: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_owned();
    let children: Vec<roxmltree::Node<'_, '_>> =
        node.children().filter(|c| c.is_element()).collect();
    if children.is_empty() && node.attributes().len() == 0 {
        return Ok(Value::String(text));
    }
    let mut map = Map::new();
    for attribute in node.attributes() {
        map.insert(
            format!("@{}", attribute.name()),
            Value::String(attribute.value().to_owned()),
        );
    }
    for child in children {
        let name = child.tag_name().name().to_owned();
        let value = element(child, depth + 1)?;
        match map.get_mut(&name) {
            None => {
                map.insert(name, value);
            }
            Some(Value::Array(items)) => items.push(value),
            Some(first) => {
                let first = first.take();
                map.insert(name, Value::Array(vec![first, value]));
            }
        }
    }
    if !text.is_empty() {
        map.insert("$".into(), Value::String(text));
    }
    Ok(Value::Object(map))
}

/// `value` escaped for XML text or an attribute.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn elements_attributes_text_and_repeats_read_as_a_tree() {
        let tree = to_json(
            r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"><Rpt><Bal><Amt Ccy="GBP">12.30</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal><Bal><Amt Ccy="GBP">1.00</Amt></Bal><Id>r1</Id></Rpt></Document>"#,
        )
        .unwrap();
        assert_eq!(tree.pointer("/Document/Rpt/Id").unwrap(), "r1");
        assert_eq!(tree.pointer("/Document/Rpt/Bal/0/Amt/@Ccy").unwrap(), "GBP");
        assert_eq!(tree.pointer("/Document/Rpt/Bal/0/Amt/$").unwrap(), "12.30");
        assert_eq!(tree.pointer("/Document/Rpt/Bal/1/Amt/$").unwrap(), "1.00");
    }

    #[test]
    fn a_dtd_deep_nesting_and_garbage_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbb">]><a>&b;</a>"#;
        assert!(to_json(bomb).is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 2) + &"</a>".repeat(MAX_DEPTH + 2);
        assert!(to_json(&deep).unwrap_err().contains("deeper"));
        assert!(to_json("{\"json\": true}").is_err());
        assert_eq!(
            escape("A & B <C> \"d\""),
            "A &amp; B &lt;C&gt; &quot;d&quot;"
        );
    }
}
