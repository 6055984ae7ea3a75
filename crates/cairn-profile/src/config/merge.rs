//! Merging configuration as resticprofile does for `inherit` and mixins (`use`).

use serde_json::{Map, Value};

/// `key...` / `key__APPEND` and `...key` / `key__PREPEND` (version 2).
enum ListOp {
    Append,
    Prepend,
}

fn list_op(key: &str) -> Option<(&str, ListOp)> {
    let upper = key.to_ascii_uppercase();
    if let Some(k) = key.strip_suffix("...") {
        return Some((k, ListOp::Append));
    }
    if upper.ends_with("__APPEND") {
        return Some((&key[..key.len() - "__APPEND".len()], ListOp::Append));
    }
    if let Some(k) = key.strip_prefix("...") {
        return Some((k, ListOp::Prepend));
    }
    if upper.ends_with("__PREPEND") {
        return Some((&key[..key.len() - "__PREPEND".len()], ListOp::Prepend));
    }
    None
}

fn into_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        v => vec![v],
    }
}

/// Merges `over` into `base`: tables key by key, other values replaced; in version 1 lists
/// merge by index (the child's first items replace the parent's first items).
pub fn merge_into(base: &mut Map<String, Value>, over: Map<String, Value>, version: u32) {
    merge(base, over, version, false)
}

/// `defer_list_ops`: a `key...` whose list is not in `base` stays as written, to extend the
/// list the profile inherits (mixins apply before inheritance).
fn merge(
    base: &mut Map<String, Value>,
    over: Map<String, Value>,
    version: u32,
    defer_list_ops: bool,
) {
    for (key, value) in over {
        if version >= 2 {
            if let Some((target, op)) = list_op(&key) {
                if defer_list_ops && !base.contains_key(target) {
                    let old = into_list(base.remove(&key).unwrap_or(Value::Null));
                    base.insert(
                        key,
                        Value::Array(old.into_iter().chain(into_list(value)).collect()),
                    );
                    continue;
                }
                let target = target.to_string();
                let old = into_list(base.remove(&target).unwrap_or(Value::Null));
                let new = into_list(value);
                let list = match op {
                    ListOp::Append => old.into_iter().chain(new).collect(),
                    ListOp::Prepend => new.into_iter().chain(old).collect(),
                };
                base.insert(target, Value::Array(list));
                continue;
            }
        }
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => merge(b, o, version, defer_list_ops),
            (Some(Value::Array(b)), Value::Array(o)) if version < 2 => {
                for (i, item) in o.into_iter().enumerate() {
                    if i < b.len() {
                        b[i] = item;
                    } else {
                        b.push(item);
                    }
                }
            }
            (_, value) => {
                // A table merged onto nothing still needs its list operators resolved.
                let value = match value {
                    Value::Object(o) => {
                        let mut m = Map::new();
                        merge(&mut m, o, version, defer_list_ops);
                        Value::Object(m)
                    }
                    v => v,
                };
                base.insert(key, value);
            }
        }
    }
}

/// Replaces every `use` (at any depth) with the mixins it names, merged over the table that
/// holds it, in the order named.
pub fn apply_mixins(
    table: &mut Map<String, Value>,
    mixins: &Map<String, Value>,
) -> Result<(), String> {
    for (_, v) in table.iter_mut() {
        if let Value::Object(child) = v {
            apply_mixins(child, mixins)?;
        }
    }
    let Some(uses) = table.remove("use") else {
        return Ok(());
    };
    for (name, vars) in parse_uses(uses)? {
        let Some(Value::Object(mixin)) = mixins
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v)
        else {
            return Err(format!("use: no mixin named {name:?}"));
        };
        let mut mixin = mixin.clone();
        let defaults = match mixin.remove("default-vars") {
            Some(Value::Object(d)) => upper_keys(d),
            _ => Map::new(),
        };
        let content = substitute(Value::Object(mixin), &vars, &defaults);
        if let Value::Object(content) = content {
            merge(table, content, 2, true);
        }
    }
    Ok(())
}

fn upper_keys(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .collect()
}

/// A mixin named by `use`, with the variables given there.
type MixinUse = (String, Map<String, Value>);

/// `use: name`, `use: {name: a, X: 1}`, `use: [a, b]`, `use: [{name: a, vars: {X: 1}}, {name: b, X: 1}]`.
fn parse_uses(v: Value) -> Result<Vec<MixinUse>, String> {
    let items = match v {
        Value::String(s) => return Ok(vec![(s, Map::new())]),
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err("use must be a mixin name or a list of them".into()),
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::String(s) => out.push((s, Map::new())),
            Value::Object(mut o) => {
                let name = match o.remove("name") {
                    Some(Value::String(s)) => s,
                    _ => return Err("use: an entry without a mixin name".into()),
                };
                let mut vars = match o.remove("vars") {
                    Some(Value::Object(v)) => upper_keys(v),
                    _ => Map::new(),
                };
                for (k, v) in upper_keys(o) {
                    vars.entry(k).or_insert(v);
                }
                out.push((name, vars));
            }
            _ => return Err("use: entries are mixin names or tables".into()),
        }
    }
    Ok(out)
}

/// Mixin variables, `$NAME` / `${NAME}` (`$$` is a dollar); unknown ones are kept for the
/// environment expansion that comes later.
fn substitute(v: Value, vars: &Map<String, Value>, defaults: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => Value::String(crate::resolve::expand_vars(&s, |name| {
            let key = name.to_ascii_uppercase();
            vars.get(&key)
                .or_else(|| defaults.get(&key))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        })),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| substitute(x, vars, defaults))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, substitute(x, vars, defaults)))
                .collect(),
        ),
        v => v,
    }
}
