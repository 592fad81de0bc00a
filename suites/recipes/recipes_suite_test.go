// Package recipes_test deploys every scenario of the seed documents into a
// cluster, step by step, and checks the whole probe matrix of each step
// against the engine, and each outcome the documents state.
//
//	go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/recipes
package recipes_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

func TestRecipes(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "netpolcheck recipes")
}

var suite = framework.NewSuite("recipes", false)

var _ = Describe("seed recipes", func() {
	for _, r := range recipes.All() {
		scenario, err := framework.RecipeScenario(r)
		if err != nil {
			panic(err) // the recipes are checked offline by matrix/recipes: this cannot happen
		}
		It(scenario.ID+": "+scenario.Title, Label(scenario.Labels...), func(ctx SpecContext) {
			suite.Run(ctx, scenario)
		})
	}
})
