//! A small ONNX graph writer over tract's prost types (`tract_onnx::pb`):
//! nodes, initialisers and attributes, then a `ModelProto` with our opset,
//! named input and outputs, and metadata. No Python involved.

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::type_proto::{self, Tensor as TensorType};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// Opset 17: Resize, QLinearConv and per-axis QuantizeLinear are all there,
/// and both tract 0.23 and onnxruntime read it.
pub const OPSET: i64 = 17;
pub const IR_VERSION: i64 = 8;

#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64], elem: DataType) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(TensorType {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    fn initializer(
        &mut self,
        name: &str,
        dims: &[i64],
        data_type: DataType,
        raw: Vec<u8>,
    ) -> String {
        // Every typed helper goes through here, so the size check is made
        // once, for all element types.
        let element = match data_type {
            DataType::Float | DataType::Int32 => 4,
            DataType::Int64 => 8,
            _ => 1,
        };
        assert_eq!(
            dims.iter().product::<i64>() as usize * element,
            raw.len(),
            "{name}: dims {dims:?} vs {} bytes of {data_type:?}",
            raw.len()
        );
        let name = self.fresh(name);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    pub fn f32s(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.initializer(
            name,
            dims,
            DataType::Float,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    pub fn i8s(&mut self, name: &str, dims: &[i64], data: &[i8]) -> String {
        self.initializer(
            name,
            dims,
            DataType::Int8,
            data.iter().map(|&v| v as u8).collect(),
        )
    }

    pub fn u8s(&mut self, name: &str, dims: &[i64], data: &[u8]) -> String {
        self.initializer(name, dims, DataType::Uint8, data.to_vec())
    }

    pub fn i32s(&mut self, name: &str, dims: &[i64], data: &[i32]) -> String {
        self.initializer(
            name,
            dims,
            DataType::Int32,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    pub fn i64s(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.initializer(
            name,
            dims,
            DataType::Int64,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        hint: &str,
    ) -> String {
        let out = self.fresh(hint);
        self.node_named(op, inputs, attrs, &out);
        out
    }

    /// Adds a node whose output has a given (graph output) name.
    pub fn node_named(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        output: &str,
    ) {
        let name = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Renames the producer of `from` so that it writes `to` (a graph output).
    pub fn rename_output(&mut self, from: &str, to: &str) {
        for n in &mut self.nodes {
            for o in &mut n.output {
                if o == from {
                    *o = to.to_string();
                }
            }
            for i in &mut n.input {
                if i == from {
                    *i = to.to_string();
                }
            }
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn finish(
        self,
        graph_name: &str,
        input: (&str, &[i64]),
        outputs: &[(&str, &[i64])],
        metadata: &[(String, String)],
    ) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "neuroscreen-train".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: graph_name.into(),
                initializer: self.initializers,
                input: vec![value_info(input.0, input.1, DataType::Float)],
                output: outputs
                    .iter()
                    .map(|(n, d)| value_info(n, d, DataType::Float))
                    .collect(),
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }
}
