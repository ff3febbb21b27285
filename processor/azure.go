package processor

import (
	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/provider"
)

var openAIAPIBaseName = helicone.Canonical(helicone.OpenAIAPIBase)

// targetHeader names the header that chooses the upstream origin and its
// value, "" when neither is sent. Helicone-OpenAI-Api-Base (Azure OpenAI's
// resource, https://myres.openai.azure.com) wins over Helicone-Target-URL,
// as in Helicone, where the one is read before the other. Both are checked
// alike (targetOrigin): only the origin is taken, the path and query
// (/openai/deployments/…?api-version=…) are the request's.
func targetHeader(hh *helicone.Headers) (name, value string) {
	if hh.OpenAIAPIBase != "" {
		return openAIAPIBaseName, hh.OpenAIAPIBase
	}
	return targetURLName, hh.TargetURL
}

// noteAzure marks a call on an Azure OpenAI path (provider.AzurePath),
// whichever header routed it: the record's provider is "azure" and, until
// the body names a model, its model is the deployment.
//
// A call whose provider is named otherwise (its Helicone-Target-URL is a
// registered provider's origin, or the sidecar's ProviderMetadata names
// one) is that provider's: Groq's own /openai/v1/… paths look like
// Azure's v1 API.
func noteAzure(c *call, path string) {
	if c.named != "" {
		return
	}
	deployment, _, ok := provider.AzurePath(path)
	if !ok {
		return
	}
	c.azure, c.deployment = true, deployment
	c.rec.Provider = provider.Azure
	c.rec.Model = deployment
}

// azurePriceModel is the model an Azure call is priced as when the
// response's own model has no price: what the configured deployment map
// says of the call's deployment (azureDeployment). "" when the map has
// none.
func (s *Server) azurePriceModel(c *call) string {
	if !c.azure {
		return ""
	}
	return s.azureModels[azureDeployment(c, c.rec.Model)]
}

// azureServedModel is the model an Azure call's deployment serves, for the
// egress policy's model rules: Azure answers with the deployment's model
// and ignores the body's, so a body naming an allowed model must not get a
// call to another one through. The deployment map's model when it has
// one, read as pricing reads it (azurePriceModel), else the deployment's
// own name (an unmapped deployment passes only a rule that lists it); ""
// off Azure or when no deployment is named.
func (s *Server) azureServedModel(c *call, bodyModel string) string {
	if !c.azure {
		return ""
	}
	d := azureDeployment(c, bodyModel)
	if m, ok := s.azureModels[d]; ok {
		return m
	}
	return d
}

// azureDeployment is the deployment an Azure call goes to: the path's
// (/openai/deployments/{name}/…), else, on the v1 API (/openai/v1/…), the
// body's model, which names the deployment there.
func azureDeployment(c *call, bodyModel string) string {
	if c.deployment != "" {
		return c.deployment
	}
	return bodyModel
}
