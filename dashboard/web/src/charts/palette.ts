// One palette for every chart: neutral greys with a few distinct hues.
export const COLORS = {
  primary: '#2f6fde',
  secondary: '#7c8ba1',
  p50: '#2f6fde',
  p95: '#d98b1c',
  p99: '#c8423b',
  error: '#c8423b',
  ok: '#2f9e6e',
  cost: '#6a4fc9',
  input: '#2f6fde',
  output: '#2aa198',
  grid: '#e7eaee',
  axis: '#5f6b7a',
};
