// Batch norm's batch counter: num_batches_tracked += 1, in place, on the GPU. batchNorm itself is
// composed of reductions and elementwise ops (src/ops/batchnorm.ts); nn.BatchNorm1d/2d count the
// batches they normalise in training, as torch does, in a u32 tensor (saved as torch's int64).
// Counting on the GPU keeps a training step from waiting to read the counter, and the count
// stays in the tensor a state dict saves and loads. One invocation: the counter is one element.

// Binding 0 is the params slot, which this kernel has none of.
@group(0) @binding(1) var<storage, read_write> bn_count: array<u32>;

@compute @workgroup_size(1)
fn count_batch() {
  bn_count[0] = bn_count[0] + 1u;
}
